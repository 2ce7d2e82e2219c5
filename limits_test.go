package img2vid

import (
	"strings"
	"testing"
	"time"
)

func TestLimitTableCoversEveryField(t *testing.T) {
	var l Limits
	seen := map[any]string{}
	for _, s := range LimitTable {
		p := s.Field(&l)
		if other, dup := seen[p]; dup {
			t.Errorf("%s and %s share a field", s.Name, other)
		}
		seen[p] = s.Name
		if !strings.HasPrefix(s.Env(), "IMG2VID_") || strings.Contains(s.Flag(), "_") {
			t.Errorf("%s: env %s, flag %s", s.Name, s.Env(), s.Flag())
		}
		if d := DefaultLimits(); d.Value(s.Name) == "0" || d.Value(s.Name) == "0s" {
			t.Errorf("%s has no default", s.Name)
		}
	}
	if len(seen) != 12 {
		t.Errorf("the table has %d limits, the struct 12 fields", len(seen))
	}
}

func TestLimitsRefuseNamesTheLimitAndZeroIsNoLimit(t *testing.T) {
	l := DefaultLimits()
	err := l.Refuse(ETOOLARGE, LimitPixels, "a.png is %dx%d", 9000, 9000)
	if ErrorCode(err) != ETOOLARGE || ErrorLimit(err) != LimitPixels ||
		err.Error() != "a.png is 9000x9000; the limit is max_pixels=50000000" {
		t.Fatalf("got %q (%s, %s)", err, ErrorCode(err), ErrorLimit(err))
	}
	if got := l.Refuse(EBUSY, LimitDuration, "long").Error(); got != "long; the limit is max_duration=30m0s" {
		t.Errorf("duration refusal %q", got)
	}
	if Over(5, 0) || !Over(5, 4) || Over(4, 4) || Over(time.Hour, 0) {
		t.Error("Over: 0 must mean no limit, and the limit itself is allowed")
	}
	l.Files = -1
	if err := l.Validate(); ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "max_files") {
		t.Errorf("negative limit: %v", err)
	}
}
