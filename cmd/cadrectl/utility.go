package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/api/v3/version"
)

// cadrectlVersion is this client's version. The API version is the etcd API
// it speaks, taken from the etcd API module it is built with.
const cadrectlVersion = "0.1.0-dev"

func (a *app) newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Prints the version of cadrectl",
		GroupID: groupUtility,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(a.out, "cadrectl version:", cadrectlVersion)
			fmt.Fprintln(a.out, "API version:", version.APIVersion)
		},
	}
}

// newOptionsCommand lists the global flags, which are hidden from every
// command's help to keep it short (as in etcdctl).
func (a *app) newOptionsCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:     "options",
		Short:   "Show the global command-line flags",
		GroupID: groupUtility,
		Run: func(*cobra.Command, []string) {
			shown := pflag.NewFlagSet("global", pflag.ContinueOnError)
			root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
				c := *f
				c.Hidden = false
				shown.AddFlag(&c)
			})
			fmt.Fprint(a.out, "The following options can be passed to any command:\n\n")
			fmt.Fprint(a.out, shown.FlagUsages())
		},
	}
}
