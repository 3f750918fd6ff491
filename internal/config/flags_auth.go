package config

import (
	"flag"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Auth is the authentication configuration (etcd's flags).
type Auth struct {
	Token string // --auth-token: "simple" (default) or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=..."

	TokenTTL uint // --auth-token-ttl, seconds
	// BcryptCost is the cost of password hashes (--bcrypt-cost).
	BcryptCost int
}

func defineAuthFlags(fs *flag.FlagSet, a *Auth) {
	fs.StringVar(&a.Token, "auth-token", a.Token, "Authentication token type: simple, or jwt,pub-key=<file>,priv-key=<file>,sign-method=<RS256|ES256|...>,ttl=<duration>.")
	fs.UintVar(&a.TokenTTL, "auth-token-ttl", a.TokenTTL, "Time (in seconds) a simple token lives after its last use.")
	fs.IntVar(&a.BcryptCost, "bcrypt-cost", a.BcryptCost, "Cost of the bcrypt hashes of passwords (4..31).")
}

func (c *Config) validateAuth() error {
	a := &c.Auth
	kind, _, _ := strings.Cut(a.Token, ",")
	switch kind {
	case "simple":
	case "jwt":
		if !strings.Contains(a.Token, "pub-key=") {
			return invalidf("invalid --auth-token %q: jwt needs pub-key=<PEM file> (and priv-key=<PEM file> on members that issue tokens), like jwt,pub-key=jwt.pub,priv-key=jwt.key,sign-method=RS256", a.Token)
		}
	default:
		return invalidf("invalid --auth-token %q: use simple or jwt,pub-key=...,priv-key=...,sign-method=...", a.Token)
	}
	if a.BcryptCost < bcrypt.MinCost || a.BcryptCost > bcrypt.MaxCost {
		return invalidf("invalid --bcrypt-cost %d: it must be between %d and %d; the default is %d", a.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost, bcrypt.DefaultCost)
	}
	if a.TokenTTL == 0 {
		return invalidf("invalid --auth-token-ttl 0: give the seconds a token lives after its last use, like 300")
	}
	return nil
}
