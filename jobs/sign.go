package jobs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// signatureHeader carries a job message's HMAC-SHA256 under the
// deployment's job key, in hex.
const signatureHeader = "Img2vid-Signature"

// MinKeyBytes is the shortest job key accepted: 256 bits, what
// HMAC-SHA256 can use.
const MinKeyBytes = 32

// ReadKey reads a job key from the file at path: the text it holds,
// trimmed of surrounding space (img2vid nats-auth writes 64 hex digits).
// A key shorter than MinKeyBytes is refused, so that a placeholder or an
// empty secret is not taken for a key.
func ReadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the job key: %w", err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("the job key in %s has %d bytes; it needs at least %d (img2vid nats-auth makes one)", path, len(key), MinKeyBytes)
	}
	return key, nil
}

// sign returns the signature of a job message's data under key.
func sign(key, data []byte) string { return hex.EncodeToString(hmacSum(key, data)) }

// errUnsigned is why a worker refuses a job message: it is not signed with
// the job key the worker has.
var errUnsigned = errors.New("the job message is not signed with this worker's job key")

// verify checks a job message's signature under key; with no key (a
// deployment that signs nothing) every message passes.
func verify(key []byte, h nats.Header, data []byte) error {
	if len(key) == 0 {
		return nil
	}
	got, err := hex.DecodeString(h.Get(signatureHeader))
	if err != nil || !hmac.Equal(got, hmacSum(key, data)) {
		return errUnsigned
	}
	return nil
}

// hmacSum is the raw HMAC-SHA256 of data under key.
func hmacSum(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}
