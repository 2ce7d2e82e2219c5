package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"

	"github.com/img2vid/img2vid/jobs"
)

// runNATSAuth writes what a cluster deployment needs to lock its NATS:
// a user per role with its nkey seed, the job key both roles share, and
// the servers' authorization block naming the users' public keys.
func runNATSAuth(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("nats-auth", "nats-auth [--keep] DIR\n\n"+
		"Writes the NATS users and job key of a cluster deployment into DIR (which must not hold them yet):\n"+
		"  DIR/nats/auth.conf    the NATS servers' users and their permissions (public keys only)\n"+
		"  DIR/api/nats.nk       an API replica's nkey seed (--nats-nkey)\n"+
		"  DIR/worker/nats.nk    a worker's nkey seed\n"+
		"  DIR/api/job.key, DIR/worker/job.key   the key job messages are signed with (--job-key), the same in both\n"+
		"docs/DEPLOY.md says where each goes.", stderr)
	keep := flags.Bool("keep", false, "when DIR holds all of them already, keep them and succeed (for a container that runs at every start)")
	if err := parse(flags, &binder{fs: flags}, args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return errUsage
	}
	dir := flags.Arg(0)
	files, err := natsAuthFiles()
	if err != nil {
		return err
	}
	var present []string
	for name := range files {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			present = append(present, filepath.Join(dir, name))
		}
	}
	switch {
	case *keep && len(present) == len(files):
		fmt.Fprintf(stdout, "%s holds the NATS users and job key already; kept\n", dir)
		return nil
	case len(present) > 0:
		return fmt.Errorf("%s exists already: img2vid nats-auth makes new credentials and overwrites none", present[0])
	}
	// Open to all: a NATS server, another user, reads the nats folder in it.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for name, f := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), f.dirMode); err != nil {
			return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
		}
		if err := os.WriteFile(path, f.data, f.mode); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	fmt.Fprintf(stdout, "wrote the NATS users and job key into %s (seeds and key readable by their owner only)\n", dir)
	return nil
}

// secretFile is one file nats-auth writes: its bytes, its mode and its
// folder's. The servers' users are public keys, readable by all (a NATS
// server runs as another user than img2vid); a role's folder is its
// owner's alone.
type secretFile struct {
	data    []byte
	mode    os.FileMode
	dirMode os.FileMode
}

// natsAuthFiles makes the users, the key and the servers' configuration,
// by path under the folder they go into.
func natsAuthFiles() (map[string]secretFile, error) {
	key := make([]byte, 32)
	rand.Read(key) // never returns an error; it crashes the program instead
	jobKey := []byte(hex.EncodeToString(key) + "\n")
	files := map[string]secretFile{}
	var users []jobs.AuthUser
	for _, role := range []string{jobs.RoleAPI, jobs.RoleWorker} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("making the %s user's nkey: %w", role, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("making the %s user's nkey: %w", role, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("making the %s user's nkey: %w", role, err)
		}
		users = append(users, jobs.AuthUser{Role: role, NKey: pub})
		files[filepath.Join(role, "nats.nk")] = secretFile{append(seed, '\n'), 0o600, 0o700}
		files[filepath.Join(role, "job.key")] = secretFile{jobKey, 0o600, 0o700}
	}
	conf, err := jobs.AuthConfig(users)
	if err != nil {
		return nil, err
	}
	files[filepath.Join("nats", "auth.conf")] = secretFile{[]byte(conf), 0o644, 0o755}
	return files, nil
}
