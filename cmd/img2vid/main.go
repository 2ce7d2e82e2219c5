// Command img2vid turns a folder of images into a video, with ONNX models
// in the loop: as a command (`img2vid convert`) or as a web app
// (`img2vid serve`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/img2vid/img2vid"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: its one-line summary and its body.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":       {"run the web app and its JSON API", runServe},
		"convert":     {"turn images into a video: convert [flags] INPUT... OUTPUT", runConvert},
		"models":      {"list the models and whether each can be loaded", runModels},
		"doctor":      {"check ffmpeg, ONNX Runtime, the GPU and the models", runDoctor},
		"nats-auth":   {"write the NATS users and job key of a cluster deployment: nats-auth DIR", runNATSAuth},
		"healthcheck": {"exit 0 when the local server answers /healthz (for container health checks)", runHealthcheck},
		"version":     {"print the version", runVersion},
	}
}

// order is the order commands are listed in help.
var order = []string{"serve", "convert", "models", "doctor", "nats-auth", "healthcheck", "version"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status: 0 success,
// 2 bad usage, and for a failed command the status of its error's code
// (exitStatus).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "img2vid: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "img2vid %s: %s\n", args[0], describe(err))
	return exitStatus(img2vid.ErrorCode(err))
}

// exitStatus maps an error code to the command's exit status. It is the
// only place that does; the README's "Exit status" table lists it.
func exitStatus(code string) int {
	switch code {
	case img2vid.EINVALID:
		return 3
	case img2vid.ENOTFOUND:
		return 4
	case img2vid.ETOOLARGE:
		return 5
	case img2vid.EUNAVAILABLE, img2vid.EBUSY:
		return 6
	case img2vid.ECANCELED:
		return 130 // as a shell reports a command stopped by Ctrl-C
	default:
		return 1
	}
}

// errUsage marks an error whose message the flag package already printed.
var errUsage = errors.New("usage")

// describe words an error for the terminal: coded errors by their message
// (internal ones in full, since the user running a command is its operator).
func describe(err error) string {
	if img2vid.ErrorCode(err) == img2vid.ECANCELED {
		return "canceled"
	}
	return err.Error()
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "img2vid %s: images to video, with ONNX models in the loop\n\nUsage:\n  img2vid COMMAND [flags]\n\nCommands:\n", version)
	cmds := commands()
	for _, name := range order {
		fmt.Fprintf(w, "  %-12s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintf(w, "\nRun 'img2vid COMMAND --help' for a command's flags and environment variables.\n")
}

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	rev := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	fmt.Fprintf(stdout, "img2vid %s%s\n", version, rev)
	return nil
}

// newFlagSet makes a flag set whose errors and help go to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: img2vid %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, turning the flag package's errors into errUsage (it
// has printed them already) and the environment's into plain errors.
func parse(fs *flag.FlagSet, b *binder, args []string) error {
	if b.err != nil {
		return b.err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
