package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/auth"
)

// Auth requests: changes go through raft (passwords hashed here first, so
// the log never holds one in clear); reads are served from this member's
// applied state.

// AuthStore is the member's auth state (for the API's checks).
func (s *Server) AuthStore() *auth.Store { return s.auth }

func (s *Server) initAuth() error {
	s.auth = auth.New()
	s.tokens = auth.NewTokens(time.Duration(s.cfg.Auth.TokenTTL) * time.Second)
	if opts, ok := strings.CutPrefix(s.cfg.Auth.Token, "jwt,"); ok {
		j, err := auth.ParseJWTOptions(opts)
		if err != nil {
			return fmt.Errorf("--auth-token: %w", err)
		}
		s.jwt = j
	}
	return nil
}

// Authenticate checks a password and returns a new simple token.
func (s *Server) Authenticate(ctx context.Context, name, password string) (string, error) {
	if !s.auth.Enabled() {
		return "", auth.ErrAuthNotEnabled
	}
	if _, err := s.auth.CheckPassword(name, password); err != nil {
		return "", err
	}
	if s.jwt != nil {
		// Self-contained: nothing to replicate.
		return s.jwt.Sign(name, s.auth.Revision())
	}
	token := auth.NewToken(s.nextID())
	_, err := s.propose(ctx, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{
		Name: name, SimpleToken: auth.TokenHash(token)}})
	if err != nil {
		return "", err
	}
	return token, nil
}

// ResolveToken returns a token's user; a token issued before the last auth
// change is refused so the client authenticates again.
func (s *Server) ResolveToken(token string) (string, error) {
	resolve := s.tokens.Resolve
	if s.jwt != nil {
		resolve = s.jwt.Verify
	}
	user, rev, err := resolve(token)
	if errors.Is(err, auth.ErrInvalidAuthToken) && s.jwt == nil {
		// A simple token is replicated through raft: a client that signed
		// in on another member can reach this one before the entry is
		// applied here. Catch up with the leader's commit once, then look
		// again, rather than refuse a token the cluster has issued.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ElectionTimeout)
		if s.node.ReadBarrier(ctx) == nil {
			user, rev, err = resolve(token)
		}
		cancel()
	}
	if err != nil {
		return "", err
	}
	if rev < s.auth.Revision() {
		return "", auth.ErrAuthOldRevision
	}
	return user, nil
}

// AuthChange proposes an auth change, hashing any password first.
func (s *Server) AuthChange(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	hash := func(pw string) (string, error) { return auth.HashPassword(pw, s.cfg.Auth.BcryptCost) }
	switch {
	case r.AuthUserAdd != nil && !(r.AuthUserAdd.Options != nil && r.AuthUserAdd.Options.NoPassword):
		if r.AuthUserAdd.Password == "" && r.AuthUserAdd.HashedPassword == "" {
			// etcd creates the user with the empty password as its
			// password (anyone may then sign in as it with ""). Cadre
			// creates it without a password instead: it can still be
			// used through a client certificate's CommonName, which is
			// what such users are for (docs/COMPATIBILITY.md).
			opts := proto.Clone(r.AuthUserAdd).(*pb.AuthUserAddRequest)
			if opts.Options == nil {
				opts.Options = &authpb.UserAddOptions{}
			}
			opts.Options.NoPassword = true
			r.AuthUserAdd = opts
			break
		}
		if r.AuthUserAdd.Password != "" {
			h, err := hash(r.AuthUserAdd.Password)
			if err != nil {
				return nil, err
			}
			r.AuthUserAdd.HashedPassword, r.AuthUserAdd.Password = h, ""
		}
	case r.AuthUserChangePassword != nil && r.AuthUserChangePassword.Password != "":
		h, err := hash(r.AuthUserChangePassword.Password)
		if err != nil {
			return nil, err
		}
		r.AuthUserChangePassword.HashedPassword, r.AuthUserChangePassword.Password = h, ""
	}
	return s.propose(ctx, r)
}

// LeaseKeys lists the keys attached to a lease (revoking needs write on
// each of them).
func (s *Server) LeaseKeys(id int64) ([][]byte, error) { return s.lessor.Keys(id), nil }
