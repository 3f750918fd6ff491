package tlsutil

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
)

// AlreadyTLS is gRPC transport credentials for connections whose TLS
// handshake already happened (in Listener, before the client port splits
// gRPC from HTTP/1): it only reports the connection's TLS state, so
// handlers find the verified client certificate in
// peer.FromContext(ctx).AuthInfo as credentials.TLSInfo. Plain-text
// connections pass through with no AuthInfo.
type AlreadyTLS struct{}

// ConnectionStater is a connection that carries a TLS state (a *tls.Conn,
// or a wrapper around one).
type ConnectionStater interface {
	ConnectionState() tls.ConnectionState
}

func (AlreadyTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if s, ok := c.(ConnectionStater); ok {
		return c, credentials.TLSInfo{
			State:          s.ConnectionState(),
			CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
		}, nil
	}
	return c, nil, nil
}

func (AlreadyTLS) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsutil.AlreadyTLS is for servers only")
}

func (AlreadyTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (a AlreadyTLS) Clone() credentials.TransportCredentials { return a }

func (AlreadyTLS) OverrideServerName(string) error { return nil }
