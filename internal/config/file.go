package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// --config-file: etcd's YAML configuration file (the keys of etcd's
// etcd.conf.yml.sample). etcd's rule, kept here: when a config file is
// given, the other flags and the environment are ignored. Cadre warns
// about each one it ignores, which etcd does not.

// configFilePath is --config-file, else CADRE_CONFIG_FILE, else
// ETCD_CONFIG_FILE (etcd reads only the last).
func configFilePath(flagValue string, environ []string) string {
	if flagValue != "" {
		return flagValue
	}
	env, _ := envMap(environ)
	if v := env[EnvKey(EnvPrefixCadre, "config-file")]; v != "" {
		return v
	}
	return env[EnvKey(EnvPrefixEtcd, "config-file")]
}

// parseFile builds the configuration from the file at path alone. cli is
// the parsed command line, used only to name what is ignored.
func parseFile(path string, cli *flag.FlagSet, environ []string) (*Config, []string, error) {
	warnings := ignoredByFile(path, cli, environ)
	c := Default()
	var r rawFlags
	fs := newFlagSet(c, &r)
	fw, err := applyFile(fs, path)
	warnings = append(warnings, fw...)
	if err != nil {
		return nil, warnings, err
	}
	c, cw, err := complete(c, &r, fs, nil)
	warnings = append(warnings, cw...)
	if err != nil {
		return nil, warnings, inFile(path, err)
	}
	c.ConfigFile = path
	return c, warnings, nil
}

// ignoredByFile names the command-line flags and environment variables
// that a config file overrides, one warning for each kind.
func ignoredByFile(path string, cli *flag.FlagSet, environ []string) []string {
	var flags []string
	cli.Visit(func(f *flag.Flag) {
		if f.Name != "config-file" {
			flags = append(flags, "--"+f.Name)
		}
	})
	env, order := envMap(environ)
	used := ""
	if cli.Lookup("config-file").Value.String() == "" {
		used = EnvKey(EnvPrefixCadre, "config-file")
		if env[used] == "" {
			used = EnvKey(EnvPrefixEtcd, "config-file")
		}
	}
	var vars []string
	for _, k := range order {
		if k == used || env[k] == "" || !(strings.HasPrefix(k, EnvPrefixCadre) || strings.HasPrefix(k, EnvPrefixEtcd)) {
			continue
		}
		vars = append(vars, k)
	}
	var out []string
	if len(flags) > 0 {
		out = append(out, fmt.Sprintf("command-line flags %s are ignored: the configuration comes from config file %s alone (etcd's rule); set them in the file instead", strings.Join(flags, " "), path))
	}
	if len(vars) > 0 {
		sort.Strings(vars)
		out = append(out, fmt.Sprintf("environment variables %s are ignored: the configuration comes from config file %s alone (etcd's rule); set them in the file instead", strings.Join(vars, " "), path))
	}
	return out
}

// inFile prefixes an error about the resulting configuration with the
// file, keeping its sentinel.
func inFile(path string, err error) error {
	var me *msgError
	if errors.As(err, &me) {
		return &msgError{msg: "config file " + path + ": " + me.msg + fileKeyHint(me.msg), sentinel: me.sentinel}
	}
	return fmt.Errorf("config file %s: %w", path, err)
}

// applyFile reads the YAML file and sets the flag behind each key.
func applyFile(fs *flag.FlagSet, path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("cannot read --config-file: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, usageErrorf("config file %s is not valid YAML: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty file: etcd's defaults
	}
	a := &fileApplier{fs: fs, path: path}
	err = a.section(doc.Content[0], "")
	return a.warnings, err
}

type fileApplier struct {
	fs       *flag.FlagSet
	path     string
	warnings []string
}

func (a *fileApplier) errorf(n *yaml.Node, format string, args ...any) error {
	return usageErrorf("config file %s: line %d: %s", a.path, n.Line, fmt.Sprintf(format, args...))
}

func (a *fileApplier) warnf(n *yaml.Node, format string, args ...any) {
	a.warnings = append(a.warnings, fmt.Sprintf("config file %s: line %d: %s", a.path, n.Line, fmt.Sprintf(format, args...)))
}

// section applies a mapping: the whole file ("") or a nested section.
func (a *fileApplier) section(n *yaml.Node, prefix string) error {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		if prefix == "" {
			return a.errorf(n, "expected keys and values (like name: infra1) at the top level, got %s", kindName(n))
		}
		return a.errorf(n, "key %q: expected a section of keys (like cert-file: server.crt), got %s", prefix, kindName(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := kn.Value
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		if line, dup := seen[key]; dup {
			return a.errorf(kn, "key %q appears twice (first at line %d); keep one", path, line)
		}
		seen[key] = kn.Line
		if err := a.key(kn, vn, path, prefix == ""); err != nil {
			return err
		}
	}
	return nil
}

// key applies one key: a section, a flag, or something to warn about.
func (a *fileApplier) key(kn, vn *yaml.Node, path string, top bool) error {
	if fileSections[path] {
		return a.section(vn, path)
	}
	if why, ok := removedKeys[path]; ok && top {
		if !isNull(vn) {
			a.warnf(kn, "key %q is ignored: %s", path, why)
		}
		return nil
	}
	name, known := fileKeys[path]
	switch {
	case known && name == "":
		if !isNull(vn) {
			a.warnf(kn, "key %q is accepted for etcd compatibility, has no effect", path)
		}
		return nil
	case known:
	case top && a.fs.Lookup(path) != nil && !fileOnlyUnder(path) && path != "config-file" && path != "version":
		name = path
	case top && fileOnlyUnder(path):
		return a.errorf(kn, "key %q is not read at the top level: etcd reads it only as %s (see etcd.conf.yml.sample); move it there", path, nestedKeyFor(path))
	default:
		a.warnf(kn, "unknown key %q is ignored (etcd ignores unknown keys too); check its spelling against etcd.conf.yml.sample", path)
		return nil
	}
	v, skip, err := a.value(vn, path, a.fs.Lookup(name))
	if err != nil || skip {
		return err
	}
	if err := a.fs.Set(name, v); err != nil {
		return a.errorf(vn, "key %q: invalid value %q: %v", path, v, err)
	}
	return nil
}

// value renders a YAML value as the flag's command-line text. skip is true
// for an empty value, which keeps the default (as in etcd).
func (a *fileApplier) value(vn *yaml.Node, path string, f *flag.Flag) (string, bool, error) {
	vn = deref(vn)
	switch vn.Kind {
	case yaml.MappingNode:
		return "", false, a.errorf(vn, "key %q: expected %s, got a section of keys", path, expected(f))
	case yaml.SequenceNode:
		if !listFlags[f.Name] {
			return "", false, a.errorf(vn, "key %q: expected %s, got a list", path, expected(f))
		}
		var items []string
		for _, it := range vn.Content {
			it = deref(it)
			if it.Kind != yaml.ScalarNode {
				return "", false, a.errorf(it, "key %q: expected a list of single values, got %s in it", path, kindName(it))
			}
			items = append(items, it.Value)
		}
		return strings.Join(items, ","), len(items) == 0, nil
	}
	if isNull(vn) || strings.TrimSpace(vn.Value) == "" {
		return "", true, nil
	}
	v := vn.Value
	switch {
	case isBoolFlag(f):
		// etcd's YAML reader is YAML 1.1, where yes/no/on/off are booleans.
		switch strings.ToLower(v) {
		case "yes", "on":
			v = "true"
		case "no", "off":
			v = "false"
		}
	case isDurationFlag(f):
		// etcd's file holds durations as integer nanoseconds; Cadre also
		// takes the flag's form, like 10m.
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			v = time.Duration(n).String()
		}
	}
	return v, false, nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return deref(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("the value %q", n.Value)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func isDurationFlag(f *flag.Flag) bool {
	if d, ok := f.Value.(interface{ isDuration() bool }); ok {
		return d.isDuration()
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(time.Duration)
	return ok
}

// expected describes a flag's value for "expected ..., got ..." errors.
func expected(f *flag.Flag) string {
	switch {
	case listFlags[f.Name]:
		return "a comma-separated string or a list"
	case isBoolFlag(f):
		return "true or false"
	case isDurationFlag(f):
		return "a duration (integer nanoseconds, or like 10m)"
	}
	if _, ok := f.Value.(msFlag); ok {
		return "an integer number of milliseconds"
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64, uint, uint64:
			return "a whole number"
		}
	}
	return "a single value"
}
