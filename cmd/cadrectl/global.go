package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults shared with etcdctl.
const (
	defaultDialTimeout      = 2 * time.Second
	defaultCommandTimeout   = 5 * time.Second
	defaultKeepAliveTime    = 2 * time.Second
	defaultKeepAliveTimeout = 6 * time.Second
)

// globalFlags are the flags every command inherits. One value per
// invocation, never a package variable.
type globalFlags struct {
	endpoints          []string
	dialTimeout        time.Duration
	commandTimeout     time.Duration
	keepAliveTime      time.Duration
	keepAliveTimeout   time.Duration
	maxRequestBytes    int
	maxRecvBytes       int
	writeOut           string
	hex                bool
	insecureTransport  bool
	insecureSkipVerify bool
	cert               string
	key                string
	cacert             string
	user               string
	password           string
	authToken          string
}

func (g *globalFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&g.endpoints, "endpoints", []string{"127.0.0.1:2379"}, "gRPC endpoints")
	fs.StringVarP(&g.writeOut, "write-out", "w", "simple", "set the output format (fields, json, protobuf, simple, table)")
	fs.BoolVar(&g.hex, "hex", false, "print byte strings as hex encoded strings")
	fs.DurationVar(&g.dialTimeout, "dial-timeout", defaultDialTimeout, "dial timeout for client connections")
	fs.DurationVar(&g.commandTimeout, "command-timeout", defaultCommandTimeout, "timeout for short running command (excluding dial timeout)")
	fs.DurationVar(&g.keepAliveTime, "keepalive-time", defaultKeepAliveTime, "keepalive time for client connections")
	fs.DurationVar(&g.keepAliveTimeout, "keepalive-timeout", defaultKeepAliveTimeout, "keepalive timeout for client connections")
	fs.IntVar(&g.maxRequestBytes, "max-request-bytes", 0, "client-side request send limit in bytes (if 0, it defaults to 2.0 MiB (2 * 1024 * 1024).)")
	fs.IntVar(&g.maxRecvBytes, "max-recv-bytes", 0, "client-side response receive limit in bytes (if 0, it defaults to \"math.MaxInt32\")")
	fs.BoolVar(&g.insecureTransport, "insecure-transport", true, "disable transport security for client connections")
	fs.BoolVar(&g.insecureSkipVerify, "insecure-skip-tls-verify", false, "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)")
	fs.StringVar(&g.cert, "cert", "", "identify secure client using this TLS certificate file")
	fs.StringVar(&g.key, "key", "", "identify secure client using this TLS key file")
	fs.StringVar(&g.cacert, "cacert", "", "verify certificates of TLS-enabled secure servers using this CA bundle")
	fs.StringVar(&g.authToken, "auth-jwt-token", "", "JWT token used for authentication (if this option is used, --user and --password should not be set)")
	fs.StringVar(&g.user, "user", "", "username[:password] for authentication")
	fs.StringVar(&g.password, "password", "", "password for authentication (if this option is used, --user option shouldn't include password)")
}

// applyEnv fills every global flag not set on the command line from
// CADRECTL_<FLAG> or, failing that, ETCDCTL_<FLAG> (dashes become
// underscores: ETCDCTL_DIAL_TIMEOUT).
func (a *app) applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		// CADRECTL_ wins over ETCDCTL_ so both tools can share one shell.
		for _, prefix := range [...]string{"CADRECTL", "ETCDCTL"} {
			key := prefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
			v, ok := a.lookupEnv(key)
			if !ok || v == "" {
				continue
			}
			if serr := fs.Set(f.Name, v); serr != nil {
				err = exitf(exitBadArgs, "invalid value %q for %s: %w", v, key, serr)
			}
			return
		}
	})
	return err
}

// configSpec validates the connection flags in etcdctl's order and returns
// the client configuration they describe.
func (a *app) configSpec(cmd *cobra.Command) (*clientv3.ConfigSpec, error) {
	g := &a.global
	for _, f := range []struct {
		name, val string
	}{{"cert", g.cert}, {"key", g.key}, {"cacert", g.cacert}} {
		if f.val == "" && cmd.Flags().Changed(f.name) {
			return nil, exitf(exitBadArgs, "empty string is passed to --%s option", f.name)
		}
	}
	auth, err := g.authConfig()
	if err != nil {
		return nil, err
	}
	eps := make([]string, len(g.endpoints))
	for i, ep := range g.endpoints {
		eps[i] = strings.TrimSpace(ep)
	}
	a.spec = &clientv3.ConfigSpec{
		Endpoints:          eps,
		DialTimeout:        g.dialTimeout,
		KeepAliveTime:      g.keepAliveTime,
		KeepAliveTimeout:   g.keepAliveTimeout,
		MaxCallSendMsgSize: g.maxRequestBytes,
		MaxCallRecvMsgSize: g.maxRecvBytes,
		Secure: &clientv3.SecureConfig{
			Cert:               g.cert,
			Key:                g.key,
			Cacert:             g.cacert,
			InsecureTransport:  g.insecureTransport,
			InsecureSkipVerify: g.insecureSkipVerify,
		},
		Auth: auth,
	}
	return a.spec, nil
}

func (g *globalFlags) authConfig() (*clientv3.AuthConfig, error) {
	switch {
	case g.user == "" && g.authToken == "":
		return nil, nil
	case g.authToken != "":
		return &clientv3.AuthConfig{Token: g.authToken}, nil
	case g.password != "":
		return &clientv3.AuthConfig{Username: g.user, Password: g.password}, nil
	}
	name, password, ok := strings.Cut(g.user, ":")
	if !ok {
		// etcdctl prompts on the terminal here; we stay non-interactive.
		return nil, exitf(exitFailure, "no password for user %q: pass --user %s:<password> or --password <password>", g.user, g.user)
	}
	return &clientv3.AuthConfig{Username: name, Password: password}, nil
}

// clientConfig turns spec into a client configuration (loading TLS files).
// Client logs are discarded: commands report failures themselves.
func clientConfig(spec *clientv3.ConfigSpec) (*clientv3.Config, error) {
	cfg, err := clientv3.NewClientConfig(spec, zap.NewNop())
	if err != nil {
		return nil, err
	}
	cfg.Logger = zap.NewNop()
	return cfg, nil
}

// newClient builds a client from spec with etcdctl's exit codes: 128 for a
// bad configuration, 2 when the client cannot be created.
func newClient(spec *clientv3.ConfigSpec) (*clientv3.Client, error) {
	cfg, err := clientConfig(spec)
	if err != nil {
		return nil, exitWith(exitBadArgs, err)
	}
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return nil, exitWith(exitBadConnection, err)
	}
	return cli, nil
}

// connect does what every request command does first, in etcdctl's order:
// validate the connection flags, pick the printer, create the client.
func (a *app) connect(cmd *cobra.Command) (*clientv3.Client, *printer, error) {
	spec, err := a.configSpec(cmd)
	if err != nil {
		return nil, nil, err
	}
	p, err := a.newPrinter()
	if err != nil {
		return nil, nil, err
	}
	cli, err := newClient(spec)
	if err != nil {
		return nil, nil, err
	}
	return cli, p, nil
}

// commandContext bounds one short request by --command-timeout.
func (a *app) commandContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), a.global.commandTimeout)
}

// requestFailed is the exit for an RPC that returned an error.
func requestFailed(err error) error {
	return exitWith(exitFailure, err)
}

// parseConsistency maps --consistency to "serializable?".
func parseConsistency(s string) (bool, error) {
	switch s {
	case "s":
		return true, nil
	case "l":
		return false, nil
	}
	return false, exitWith(exitBadFeature, fmt.Errorf("unknown consistency flag %q", s))
}
