package issuer

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// maxForwardedHops bounds how much of X-Forwarded-For is read.
const maxForwardedHops = 16

// parseTrustedProxies reads addresses ("10.0.0.1") and CIDR ranges
// ("10.0.0.0/8") of trusted proxies.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("issuer: trusted proxy %q is neither an address nor a CIDR range", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the caller's address for audit events and login limits: the
// connection's address, unless that is a trusted proxy; then the nearest
// address in X-Forwarded-For, read from the right, that is not a trusted
// proxy itself. Entries left of it were written by the client and are not
// believed.
func (s *Server) clientIP(c *fiber.Ctx) string {
	remote, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.Context().RemoteIP().String()
	}
	remote = remote.Unmap()
	if len(s.proxies) == 0 || !s.trustedProxy(remote) {
		return remote.String()
	}
	hops := strings.Split(c.Get(fiber.HeaderXForwardedFor), ",")
	client := remote
	for i := len(hops) - 1; i >= 0 && i >= len(hops)-maxForwardedHops; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !s.trustedProxy(client) {
			break
		}
	}
	return client.String()
}
