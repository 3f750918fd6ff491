// Package netutil opens the listeners a member's URLs name: TCP for
// http/https, a Unix socket for unix/unixs (etcd's schemes; the URL's host
// part is the socket file, relative to the working directory).
package netutil

import (
	"net"
	"net/url"
	"os"
	"strings"
)

// IsUnix reports whether a URL scheme names a Unix socket.
func IsUnix(scheme string) bool {
	s := strings.ToLower(scheme)
	return s == "unix" || s == "unixs"
}

// IsSecure reports whether a URL scheme means TLS.
func IsSecure(scheme string) bool {
	s := strings.ToLower(scheme)
	return s == "https" || s == "unixs"
}

// Listen opens the listener u names. A Unix socket file left by a member
// that did not stop cleanly is removed first, as etcd does.
func Listen(u url.URL) (net.Listener, error) {
	if IsUnix(u.Scheme) {
		p := SocketPath(u)
		_ = os.Remove(p)
		return net.Listen("unix", p)
	}
	return net.Listen("tcp", u.Host)
}

// Network is the network to dial for a URL scheme.
func Network(scheme string) string {
	if IsUnix(scheme) {
		return "unix"
	}
	return "tcp"
}

// SocketPath is the socket file a unix URL names: unix://name (relative to
// the working directory) or unix:///absolute/path.
func SocketPath(u url.URL) string { return u.Host + u.Path }
