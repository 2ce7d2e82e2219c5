// Command objstore measures what a large upload costs in the job system's
// object store: the embedded NATS JetStream server and the uploads bucket
// exactly as `img2vid serve` creates them (jobs.StartEmbedded, jobs.Open),
// one upload of -size-mb stored the way the server stores it (a Put from
// the spooled file) and read back the way a worker reads it (GetFile), then
// deleted as a finished job deletes its images. It reports the time of each
// step, the store's disk use during and after each, and the process's peak
// resident memory in each (the server runs inside this process, as in the
// default deployment, so that is the server's and the client's together).
//
// It does it for two shapes of the same bytes: one object (a single file as
// large as the upload, possible only with max_file_mb raised or off), and
// objects of -file-mb each (the largest an image may be by default); and,
// with -cluster, again on a three-node cluster of nats-server processes on
// this machine (built from the module go.mod pins) with the bucket at three
// replicas, as a cluster deployment creates it: there the disk is each
// server's, and the memory the largest server process's.
//
//	go run ./bench/objstore -size-mb 1024
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/img2vid/img2vid/bench/internal/machine"
	"github.com/img2vid/img2vid/internal/natsproc"
	"github.com/img2vid/img2vid/jobs"
)

// uploadsBucket is the bucket the job system keeps uploads in; the
// benchmark opens it by name after jobs.Open has created it.
const uploadsBucket = "img2vid-uploads"

func main() {
	sizeMB := flag.Int("size-mb", 1024, "size of the upload, MiB")
	fileMB := flag.Int("file-mb", 64, "size of each object in the many-objects shape, MiB (the default max_file_mb)")
	dir := flag.String("dir", "", "folder for the store and the files (default: a new one under $TMPDIR); it needs about five times -size-mb free")
	cluster := flag.Bool("cluster", true, "measure on a three-node nats-server cluster at three replicas")
	embedded := flag.Bool("embedded", true, "measure on the embedded server")
	buffered := flag.Int("max-buffered-mb", 0, "the cluster's max_buffered_size, MiB: what one stream's leader queues before it refuses publishes (0: the server's default, 128)")
	flag.Parse()
	if err := run(*sizeMB, *fileMB, *dir, *embedded, *cluster, *buffered); err != nil {
		fmt.Fprintln(os.Stderr, "objstore:", err)
		os.Exit(1)
	}
}

// step is what one step (put, get or delete) of one shape cost.
type step struct {
	took     time.Duration
	diskPeak int64 // the largest store's largest size on disk during the step
	diskEnd  int64 // the largest store's size on disk when the step ended
	rssPeak  int64 // the largest server process's peak resident memory during the step
}

// deployment is where the bucket lives: the embedded server of one
// machine, or a cluster of nats-server processes.
type deployment struct {
	conn     *nats.Conn
	replicas int
	stores   []string // each server's JetStream folder
	pids     []int    // the server processes; none: this process (embedded)
	close    func()
}

func run(sizeMB, fileMB int, dir string, embeddedToo, cluster bool, bufferedMB int) error {
	if sizeMB <= 0 || fileMB <= 0 || sizeMB%fileMB != 0 {
		return fmt.Errorf("-size-mb %d must be a positive multiple of -file-mb %d", sizeMB, fileMB)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "img2vid-bench-objstore-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	fmt.Printf("objstore: %s, %d CPUs, %s, load average %s at the start\n",
		machine.CPUModel(), runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine.LoadAvg())
	shapes := []struct {
		name  string
		count int
		size  int64
	}{
		{fmt.Sprintf("1 object of %d MiB", sizeMB), 1, int64(sizeMB) << 20},
		{fmt.Sprintf("%d objects of %d MiB", sizeMB/fileMB, fileMB), sizeMB / fileMB, int64(fileMB) << 20},
	}
	var wheres []string
	if embeddedToo {
		wheres = append(wheres, "embedded")
	}
	if cluster {
		wheres = append(wheres, "3 nodes, R3")
	}
	fmt.Printf("%-12s %-22s %-7s %9s %9s %11s %11s %10s\n", "server", "shape", "step", "time", "MiB/s", "disk peak", "disk after", "RSS peak")
	for _, where := range wheres {
		for i, sh := range shapes {
			sub := filepath.Join(dir, strconv.Itoa(i))
			if err := os.MkdirAll(sub, 0o700); err != nil {
				return err
			}
			var d *deployment
			var err error
			if where == "embedded" {
				d, err = embedded(filepath.Join(sub, "jetstream"))
			} else {
				d, err = startCluster(sub, bufferedMB)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			steps, bareGet, err := measure(d, sub, sh.count, sh.size)
			d.close()
			if err != nil { // a figure too: what the store refused
				fmt.Printf("%-12s %-22s failed: %v\n", where, sh.name, err)
				os.RemoveAll(sub)
				continue
			}
			total := float64(int64(sh.count)*sh.size) / (1 << 20)
			for _, name := range []string{"put", "get", "delete"} {
				s := steps[name]
				rate := "-"
				if name != "delete" {
					rate = fmt.Sprintf("%.0f", total/s.took.Seconds())
				}
				fmt.Printf("%-12s %-22s %-7s %9s %9s %11s %11s %10s\n", where, sh.name, name, s.took.Round(10*time.Millisecond), rate,
					mib(s.diskPeak), mib(s.diskEnd), mib(s.rssPeak))
			}
			fmt.Printf("%-12s %-22s one object read by a context without a deadline (the client's 5 s default): %s\n", where, sh.name, bareGet)
			if err := os.RemoveAll(sub); err != nil {
				return err
			}
		}
	}
	fmt.Printf("load average %s at the end\n", machine.LoadAvg())
	return nil
}

// embedded starts the server of the single-machine deployment.
func embedded(store string) (*deployment, error) {
	e, err := jobs.StartEmbedded(store)
	if err != nil {
		return nil, err
	}
	return &deployment{conn: e.Conn, replicas: 1, stores: []string{store}, close: e.Close}, nil
}

// startCluster builds nats-server from the module go.mod pins and starts
// three of them on loopback as one JetStream cluster, their stores under
// dir, with max_buffered_size set to bufferedMB when it is not 0.
func startCluster(dir string, bufferedMB int) (*deployment, error) {
	bin, err := natsproc.Build(dir)
	if err != nil {
		return nil, err
	}
	ports := make([]int, 6) // client and route port of each node
	for i := range ports {
		p, err := natsproc.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	d := &deployment{replicas: 3}
	var cmds []*exec.Cmd
	d.close = func() {
		if d.conn != nil {
			d.conn.Close()
		}
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
			c.Wait()
		}
	}
	for i := range 3 {
		store := filepath.Join(dir, fmt.Sprintf("node%d", i))
		args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-n", fmt.Sprintf("node%d", i),
			"-js", "-sd", store, "--cluster_name", "bench", "-cluster", routes[i], "-routes", strings.Join(routes, ",")}
		if bufferedMB > 0 {
			conf := filepath.Join(dir, "nats.conf")
			if err := os.WriteFile(conf, fmt.Appendf(nil, "jetstream { max_buffered_size: %dMB }\n", bufferedMB), 0o600); err != nil {
				d.close()
				return nil, err
			}
			args = append(args, "-c", conf)
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			d.close()
			return nil, err
		}
		cmds = append(cmds, cmd)
		d.stores = append(d.stores, store)
		d.pids = append(d.pids, cmd.Process.Pid)
	}
	// The cluster elects its JetStream leader a few seconds after start.
	deadline := time.Now().Add(time.Minute)
	for {
		nc, err := nats.Connect(strings.Join(urls, ","))
		if err == nil {
			d.conn = nc
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var sys *jobs.System
			sys, err = jobs.Open(ctx, nc, jobs.Config{Replicas: 3})
			cancel()
			if err == nil {
				sys.Close()
				return d, nil
			}
			nc.Close()
			d.conn = nil
		}
		if time.Now().After(deadline) {
			d.close()
			return nil, fmt.Errorf("the cluster did not take the job system within a minute: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// measure puts count objects of size bytes into the uploads bucket of d
// (from a file under dir, as the server spools uploads), gets each back
// into a file, and deletes them.
func measure(d *deployment, dir string, count int, size int64) (steps map[string]step, bareGet string, err error) {
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, d := range []string{in, out} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, "", err
		}
	}
	// Every object is put from the same file: the bytes on disk outside
	// the store stay at one object's size whatever the count.
	src := filepath.Join(in, "upload")
	if err := writeFile(src, size); err != nil {
		return nil, "", err
	}
	ctx := context.Background()
	sys, err := jobs.Open(ctx, d.conn, jobs.Config{Replicas: d.replicas})
	if err != nil {
		return nil, "", err
	}
	defer sys.Close()
	js, err := jetstream.New(d.conn)
	if err != nil {
		return nil, "", err
	}
	bucket, err := js.ObjectStore(ctx, uploadsBucket)
	if err != nil {
		return nil, "", fmt.Errorf("opening bucket %s: %w", uploadsBucket, err)
	}
	names := make([]string, count)
	for i := range names {
		names[i] = fmt.Sprintf("bench/%04d.upload", i)
	}
	// Puts and gets run under a deadline, as the job system's do: without
	// one the client gives each chunk's acknowledgement its default API
	// timeout (5 s), and a whole read the same.
	dctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	steps = map[string]step{}
	steps["put"], err = timed(d, func() error {
		for _, name := range names {
			if err := put(dctx, bucket, name, src); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	// The client gives a Get whose context has no deadline its default
	// API timeout (5 s) for the whole read (the job system gives its
	// reads a deadline for that reason): try the first object that way,
	// then time the reads under a deadline long enough for any of them.
	bare := filepath.Join(out, "bare")
	start := time.Now()
	if err := bucket.GetFile(ctx, names[0], bare); err != nil {
		bareGet = fmt.Sprintf("failed after %s: %v", time.Since(start).Round(10*time.Millisecond), err)
	} else {
		bareGet = fmt.Sprintf("read in %s", time.Since(start).Round(10*time.Millisecond))
	}
	os.Remove(bare)
	steps["get"], err = timed(d, func() error {
		for _, name := range names {
			dst := filepath.Join(out, filepath.Base(name))
			if err := bucket.GetFile(dctx, name, dst); err != nil {
				return fmt.Errorf("getting %s: %w", name, err)
			}
			if err := sameSize(dst, size); err != nil {
				return err
			}
			// The worker deletes a job's copy when the job ends; keep
			// the out folder at one object's size.
			if err := os.Remove(dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	steps["delete"], err = timed(d, func() error {
		for _, name := range names {
			if err := bucket.Delete(ctx, name); err != nil {
				return fmt.Errorf("deleting %s: %w", name, err)
			}
		}
		return nil
	})
	return steps, bareGet, err
}

// put stores one object from a file, as the server does with an upload.
func put(ctx context.Context, bucket jetstream.ObjectStore, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := bucket.Put(ctx, jetstream.ObjectMeta{Name: name}, f); err != nil {
		return fmt.Errorf("putting %s: %w", name, err)
	}
	return nil
}

// timed runs f, sampling the stores' disk use every 100 ms, and reports
// its time, the largest store's peak and end, and the largest server
// process's peak resident memory (the kernel's high-water mark, reset
// before f starts).
func timed(d *deployment, f func() error) (step, error) {
	runtime.GC()
	procs := []string{"self"}
	if len(d.pids) > 0 {
		procs = nil
		for _, pid := range d.pids {
			procs = append(procs, strconv.Itoa(pid))
		}
	}
	for _, p := range procs {
		if err := resetPeakRSS(p); err != nil {
			return step{}, err
		}
	}
	largestStore := func() int64 {
		var largest int64
		for _, store := range d.stores {
			largest = max(largest, diskUse(store))
		}
		return largest
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if n := largestStore(); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	err := f()
	took := time.Since(start)
	close(stop)
	wg.Wait()
	end := largestStore()
	var rss int64
	for _, p := range procs {
		n, rerr := peakRSS(p)
		if err == nil {
			err = rerr
		}
		rss = max(rss, n)
	}
	return step{took: took, diskPeak: max(peak.Load(), end), diskEnd: end, rssPeak: rss}, err
}

// diskUse is the space the files under dir take on disk (allocated blocks,
// not apparent sizes: the store preallocates and punches holes).
func diskUse(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a block removed while walking
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total
}

// resetPeakRSS resets the kernel's high-water mark of the resident memory
// of process proc ("self", or a pid) (proc(5): clear_refs, value 5).
func resetPeakRSS(proc string) error {
	if err := os.WriteFile("/proc/"+proc+"/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("resetting peak RSS: %w", err)
	}
	return nil
}

// peakRSS is VmHWM of process proc ("self", or a pid), in bytes.
func peakRSS(proc string) (int64, error) {
	b, err := os.ReadFile("/proc/" + proc + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// writeFile writes size bytes of changing content (not zeros: nothing on
// the way should get to skip them).
func writeFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	for written := int64(0); written < size; {
		n := min(int64(len(buf)), size-written)
		buf[0]++ // each MiB differs
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		written += n
	}
	return f.Close()
}

// sameSize checks that a file read back is as long as what was stored.
func sameSize(path string, size int64) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Size() != size {
		return fmt.Errorf("%s: read back %d bytes of %d", path, info.Size(), size)
	}
	return nil
}

// mib formats bytes as MiB.
func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
