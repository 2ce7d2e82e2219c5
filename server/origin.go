package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/img2vid/img2vid"
)

// EFORBIDDEN is the code of a request refused for where it comes from: a
// page of another site, or a host name this server does not answer to.
// Only the HTTP layer knows either.
const EFORBIDDEN = "forbidden"

// crossOrigin builds the check that refuses state-changing requests a
// browser sends on behalf of another site's page (Go's own: it reads
// Sec-Fetch-Site, else compares Origin with Host), except from the origins
// listed. Requests with neither header (curl, scripts) pass: they are not a
// browser acting for someone else.
func crossOrigin(allowed []string) (*http.CrossOriginProtection, error) {
	p := http.NewCrossOriginProtection()
	for _, o := range allowed {
		if err := p.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("server config: allowed origin %q: %w (want scheme://host[:port])", o, err)
		}
	}
	return p, nil
}

// sameOrigin refuses a POST, DELETE or other state-changing request made by
// a page of another site, so that no site a user visits can start or
// delete jobs on their server, token or not.
func (s *Server) sameOrigin(c *gin.Context) {
	if err := s.origins.Check(c.Request); err != nil {
		s.writeError(c, img2vid.Errorf(EFORBIDDEN,
			"cross-site %s refused: this server takes changes only from its own page; add the page's origin to allowed_origins to let it in",
			c.Request.Method))
	}
}

// AnyHost, listed in Config.AllowedHosts, serves every Host: for a server
// behind a reverse proxy that rewrites Host, or that checks it itself.
const AnyHost = "*"

// knownHost refuses a request whose Host is not one the server answers to,
// so that a page of another site that points its own name at this machine
// (DNS rebinding) is turned away wherever the server listens.
func (s *Server) knownHost(c *gin.Context) {
	host := hostName(c.Request.Host)
	if !servesHost(s.cfg.AllowedHosts, host) {
		s.writeError(c, img2vid.Errorf(EFORBIDDEN,
			"host %q is not served here: only IP addresses, localhost and the allowed hosts are; "+
				"to serve it, add it to the allowed hosts (--allowed-hosts or IMG2VID_ALLOWED_HOSTS)", truncate(host, 80)))
	}
}

// servesHost reports whether a request for host is answered. IP addresses
// and localhost always are: rebinding needs a name the attacker's DNS
// answers for, and a browser sends an address or localhost only for pages
// of that address or of this machine. No Host at all (HTTP/1.0) is no
// browser's either. Any other name must be allowed, or AnyHost be.
func servesHost(allowed []string, host string) bool {
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return slices.ContainsFunc(allowed, func(h string) bool { return h == AnyHost || strings.EqualFold(h, host) })
}

// hostName is the name in a Host header, without port or IPv6 brackets.
func hostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}
