package jobs

import (
	"fmt"
	"strconv"
	"strings"
)

// Roles a NATS user of the job system can have.
const (
	// RoleAPI publishes jobs and reads their state and videos.
	RoleAPI = "api"
	// RoleWorker takes jobs and writes their state and videos.
	RoleWorker = "worker"
)

// permissions is what one role may publish and subscribe to, in NATS
// subjects. Both roles create the stream, consumer and buckets at start
// (whichever comes first), read and write job states (a worker reports
// progress, an API replica records a DELETE) and use both object stores
// (an API replica stores uploads and reads videos; a worker reads uploads
// and stores videos; either removes what a job no longer needs). What
// tells them apart is the queue: only an API replica publishes a job,
// only a worker takes one. Nothing may delete a stream or the workers'
// consumer, or reach any subject outside the job system's.
type permissions struct {
	pubAllow, pubDeny []string
}

// shared is what both roles publish to.
var shared = []string{
	"$JS.API.INFO",
	"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.INFO.>",
	"$JS.API.STREAM.MSG.GET.>", "$JS.API.DIRECT.GET.>",
	"$JS.API.STREAM.PURGE.OBJ_" + uploadsBucket, "$JS.API.STREAM.PURGE.OBJ_" + videosBucket,
	"$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.DURABLE.CREATE.>", "$JS.API.CONSUMER.INFO.>",
	"$JS.API.CONSUMER.DELETE.KV_" + stateBucket + ".*", "$JS.API.CONSUMER.DELETE.OBJ_" + uploadsBucket + ".*",
	"$JS.API.CONSUMER.DELETE.OBJ_" + videosBucket + ".*",
	"$JS.API.CONSUMER.MSG.NEXT.>",
	"$KV." + stateBucket + ".>", "$KV." + admissionBucket + ".>", "$O." + uploadsBucket + ".>", "$O." + videosBucket + ".>",
}

// roles maps each role to its permissions.
var roles = map[string]permissions{
	RoleAPI: {
		pubAllow: append([]string{queueSubject, "$JS.API.STREAM.MSG.DELETE." + queueStream}, shared...),
		// The workers' consumer is theirs: an API replica that could pull
		// from it could take jobs off the queue unrun.
		pubDeny: []string{"$JS.API.CONSUMER.MSG.NEXT." + queueStream + ".>", "$JS.ACK." + queueStream + ".>"},
	},
	RoleWorker: {
		pubAllow: append([]string{"$JS.ACK." + queueStream + "." + consumerName + ".>"}, shared...),
		// Denied outright, above any allow: a worker's credentials, if
		// stolen, queue no job.
		pubDeny: []string{queueSubject, "$JS.API.STREAM.MSG.DELETE." + queueStream},
	},
}

// AuthUser is one NATS user of the job system: its role and its public
// nkey.
type AuthUser struct {
	Role string
	NKey string
}

// AuthConfig returns the authorization block of a NATS server
// configuration that lets in only the users given, each with its role's
// permissions: replies to its own requests on _INBOX, and the job
// system's subjects (see permissions). A server of a cluster includes it
// (include "auth.conf"); the file holds public keys only.
func AuthConfig(users []AuthUser) (string, error) {
	var b strings.Builder
	b.WriteString("# The NATS users of img2vid, one per role (img2vid nats-auth writes this).\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		p, ok := roles[u.Role]
		if !ok {
			return "", fmt.Errorf("NATS user %s: unknown role %q (want %s or %s)", u.NKey, u.Role, RoleAPI, RoleWorker)
		}
		if !strings.HasPrefix(u.NKey, "U") {
			return "", fmt.Errorf("NATS user of role %s: %q is not a user's public nkey (it starts with U)", u.Role, u.NKey)
		}
		fmt.Fprintf(&b, "    # %s\n    {\n      nkey: %s\n      permissions: {\n", u.Role, u.NKey)
		fmt.Fprintf(&b, "        publish: { allow: %s, deny: %s }\n", quoted(p.pubAllow), quoted(p.pubDeny))
		b.WriteString("        subscribe: { allow: [\"_INBOX.>\"] }\n      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

// quoted is a list of subjects in the configuration's syntax.
func quoted(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
