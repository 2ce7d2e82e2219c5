package jobs

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Auth is how this process proves itself to an external NATS and checks
// the servers it reaches. Zero values: none.
type Auth struct {
	// Creds is a credentials file (a user's JWT and nkey seed, as nsc
	// writes it).
	Creds string
	// NKey is a file holding a user's nkey seed, as img2vid nats-auth
	// writes it, for a server that lists its users by public nkey.
	NKey string
	// CA is a PEM file of the certificate authorities that sign the
	// servers' certificates, for tls:// URLs (default: the system's).
	CA string
}

// Connect connects to an external NATS server or cluster: urls is a comma
// separated list (nats://, tls:// for TLS). A server that cannot be reached
// at start, or that refuses the credentials or whose certificate does not
// check out, is an error naming it; once connected, a lost connection is
// retried without end, and Connected reports it meanwhile.
func Connect(urls string, auth Auth, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("img2vid"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed on purpose
				log.Warn("lost the connection to NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "url", redact(nc.ConnectedUrl()))
		}),
	}
	if auth.Creds != "" {
		opts = append(opts, nats.UserCredentials(auth.Creds))
	}
	if auth.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(auth.NKey)
		if err != nil {
			return nil, fmt.Errorf("reading the NATS nkey: %w", err)
		}
		opts = append(opts, opt)
	}
	if auth.CA != "" {
		opts = append(opts, nats.RootCAs(auth.CA))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", RedactURLs(urls), err)
	}
	return nc, nil
}

// RedactURLs is a comma separated list of server URLs with any password
// hidden, for messages and logs.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		parts[i] = redact(strings.TrimSpace(u))
	}
	return strings.Join(parts, ",")
}

// redact hides the password of one URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
