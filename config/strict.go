package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is a setting that cannot work: which key, where its value came
// from, and what is wrong with it. Every mistake Load reports is one (or
// several, joined with errors.Join).
type Error struct {
	// Key is the setting, e.g. "server.read_timeout" or "roles.member".
	Key string
	// Where is where the value was set: "config.yaml line 12", "environment
	// variable SIGNET_SERVER_READ_TIMEOUT" or "flag --listen"; empty for a
	// built-in default.
	Where string
	// Problem says what is wrong, for a person.
	Problem string
}

func (e *Error) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("config: %s: %s", e.Key, e.Problem)
	}
	return fmt.Sprintf("config: %s: %s: %s", e.Where, e.Key, e.Problem)
}

// badKey is an Error with no location yet; Load fills it in.
func badKey(key, format string, args ...any) *Error {
	return &Error{Key: key, Problem: fmt.Sprintf(format, args...)}
}

var durationType = reflect.TypeFor[time.Duration]()

// yamlKey is the configuration key of a struct field ("" when the field
// is not configurable).
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// leaves calls fn for every key whose value is a scalar or a list (not a
// section, not a map with names the user chooses), with the value in d.
func leaves(t reflect.Type, v reflect.Value, prefix string, fn func(key string, t reflect.Type, v reflect.Value)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlKey(f)
		if name == "" {
			continue
		}
		key := joinKey(prefix, name)
		switch {
		case f.Type.Kind() == reflect.Struct:
			leaves(f.Type, v.Field(i), key, fn)
		case f.Type.Kind() == reflect.Map:
		default:
			fn(key, f.Type, v.Field(i))
		}
	}
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// envName is the environment variable that sets key.
func envName(key string) string {
	return "SIGNET_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// fileChecker walks a YAML document against the Config struct, recording
// the line of every key it sees and every mistake.
type fileChecker struct {
	file  string
	lines map[string]int
	errs  []*Error
}

func (c *fileChecker) fail(key string, line int, format string, args ...any) {
	c.errs = append(c.errs, &Error{Key: key, Where: fmt.Sprintf("%s line %d", c.file, line), Problem: fmt.Sprintf(format, args...)})
}

// checkFile parses data (the file named file) and checks it against the
// configuration's shape: every key known (only the names under roles and
// presets are the user's), every value of the right kind, durations with a
// unit. It returns the line of every key in the file.
func checkFile(file string, data []byte) (map[string]int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(file, data, err)
	}
	c := &fileChecker{file: file, lines: map[string]int{}}
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			return c.lines, nil // only comments
		}
		c.check("", root, reflect.TypeFor[Config]())
	}
	if len(c.errs) == 0 {
		return c.lines, nil
	}
	sort.SliceStable(c.errs, func(i, j int) bool { return lineOf(c.errs[i]) < lineOf(c.errs[j]) })
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e
	}
	return nil, errors.Join(errs...)
}

func lineOf(e *Error) int {
	_, after, _ := strings.Cut(e.Where, " line ")
	n, _ := strconv.Atoi(after)
	return n
}

// syntaxError reports a YAML parse error at the line where the document
// stops making sense. yaml.v3 names the line where the enclosing block
// began (an indentation slip on line 30 of the server section is reported
// at line 1), so the line is found again here: one after the longest run of
// leading lines that still parses.
func syntaxError(file string, data []byte, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			msg = after
		}
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	line := len(lines)
	for k := len(lines) - 1; k >= 0; k-- {
		var n yaml.Node
		if yaml.Unmarshal(bytes.Join(lines[:k], nil), &n) == nil {
			line = k + 1
			break
		}
	}
	line = min(line, max(len(lines), 1))
	return fmt.Errorf("config: %s line %d: not valid YAML: %s", file, line, msg)
}

// check checks node, the value of key, against type t.
func (c *fileChecker) check(key string, n *yaml.Node, t reflect.Type) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	null := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	switch {
	case t.Kind() == reflect.Struct:
		if null {
			return // an empty section
		}
		if n.Kind != yaml.MappingNode {
			c.fail(key, n.Line, "want a section of keys (%s), got %s", strings.Join(fieldNames(t), ", "), describe(n))
			return
		}
		c.mapping(key, n, func(name string, kn, vn *yaml.Node) {
			f, ok := fieldByKey(t, name)
			if !ok {
				c.fail(joinKey(key, name), kn.Line, "unknown key%s", suggest(key, name, t))
				return
			}
			c.check(joinKey(key, name), vn, f.Type)
		})
	case t.Kind() == reflect.Map:
		if null {
			return
		}
		if n.Kind != yaml.MappingNode {
			c.fail(key, n.Line, "want a map of names to values, got %s", describe(n))
			return
		}
		c.mapping(key, n, func(name string, _, vn *yaml.Node) {
			if strings.TrimSpace(name) == "" {
				c.fail(key, vn.Line, "a name is empty")
				return
			}
			c.check(joinKey(key, name), vn, t.Elem())
		})
	case t.Kind() == reflect.Slice:
		if null {
			return // an empty list
		}
		if n.Kind != yaml.SequenceNode {
			c.fail(key, n.Line, "want a list ([a, b] or one \"- item\" per line), got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			c.check(fmt.Sprintf("%s[%d]", key, i), item, t.Elem())
		}
	default:
		if n.Kind != yaml.ScalarNode {
			c.fail(key, n.Line, "want a single value, got %s", describe(n))
			return
		}
		if null {
			c.fail(key, n.Line, "has no value (remove the line to keep the default)")
			return
		}
		if err := checkScalar(t, n.Value, n.Tag); err != nil {
			c.fail(key, n.Line, "%s", err.Error())
		}
	}
}

// mapping calls fn for every entry of the mapping n (following YAML merge
// keys), reporting keys that repeat.
func (c *fileChecker) mapping(key string, n *yaml.Node, fn func(name string, kn, vn *yaml.Node)) {
	seen := map[string]int{}
	var walk func(n *yaml.Node, merged bool)
	walk = func(n *yaml.Node, merged bool) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Kind != yaml.ScalarNode {
				c.fail(key, kn.Line, "a key must be a plain name, got %s", describe(kn))
				continue
			}
			if kn.Tag == "!!merge" {
				for _, m := range mergeSources(vn) {
					walk(m, true)
				}
				continue
			}
			name := kn.Value
			if first, dup := seen[name]; dup {
				if !merged {
					c.fail(joinKey(key, name), kn.Line, "given twice (first on line %d)", first)
				}
				continue
			}
			seen[name] = kn.Line
			c.lines[joinKey(key, name)] = kn.Line
			fn(name, kn, vn)
		}
	}
	walk(n, false)
}

// mergeSources lists the mappings a YAML merge key ("<<: *base") brings in.
func mergeSources(n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{n}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, m := range n.Content {
			out = append(out, mergeSources(m)...)
		}
		return out
	}
	return nil
}

// describe names the kind of a YAML value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

// checkScalar checks one value (from the file, with its YAML tag, or from
// the environment or a flag, with tag "") for a field of type t.
func checkScalar(t reflect.Type, value, tag string) error {
	switch {
	case t == durationType:
		_, err := parseDuration(value)
		return err
	case t.Kind() == reflect.String:
		if tag != "" && tag != "!!str" && tag != "!!int" && tag != "!!float" && tag != "!!bool" {
			return fmt.Errorf("want text, got %q (%s)", value, tag)
		}
		return nil
	case t.Kind() == reflect.Bool:
		if tag == "!!bool" {
			return nil
		}
		if _, err := strconv.ParseBool(value); err != nil || tag != "" {
			return fmt.Errorf("want true or false, got %q", value)
		}
		return nil
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		if _, err := strconv.ParseInt(value, 0, t.Bits()); err != nil {
			return fmt.Errorf("want a whole number, got %q", value)
		}
		return nil
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		if _, err := strconv.ParseUint(value, 0, t.Bits()); err != nil {
			return fmt.Errorf("want a whole number of at least 0, got %q", value)
		}
		return nil
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		if _, err := strconv.ParseFloat(value, t.Bits()); err != nil {
			return fmt.Errorf("want a number, got %q", value)
		}
		return nil
	}
	return fmt.Errorf("cannot be set to %q", value)
}

// parseDuration reads a Go duration that carries a unit: "10" is refused
// (it would mean 10 nanoseconds), "0" alone is zero.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil {
		return d, nil
	}
	if _, ferr := strconv.ParseFloat(s, 64); ferr == nil {
		return 0, fmt.Errorf("%q has no unit; write it with one, e.g. %ss (seconds), %sm (minutes) or %sh (hours)", s, s, s, s)
	}
	return 0, fmt.Errorf("%q is not a duration; write it like 250ms, 90s, 10m or 24h", s)
}

// fieldByKey finds the field of struct type t configured by name.
func fieldByKey(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlKey(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldNames lists the keys of struct type t.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if name := yamlKey(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// suggest proposes what an unknown key name under section (of type t) was
// meant to be: a sibling within two typing mistakes, or a key of that name
// elsewhere (a "listen:" at the top instead of under server), else the
// list of keys the section has.
func suggest(section, name string, t reflect.Type) string {
	names := fieldNames(t)
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %s?", joinKey(section, best))
	}
	var elsewhere []string
	leaves(reflect.TypeFor[Config](), reflect.ValueOf(Config{}), "", func(key string, _ reflect.Type, _ reflect.Value) {
		if key == name || strings.HasSuffix(key, "."+name) {
			elsewhere = append(elsewhere, key)
		}
	})
	if len(elsewhere) > 0 {
		return fmt.Sprintf("; did you mean %s?", strings.Join(elsewhere, " or "))
	}
	where := "here"
	if section != "" {
		where = "under " + section
	}
	return fmt.Sprintf(" (known %s: %s)", where, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checkEnv checks the SIGNET_* variables in environ ("NAME=value" pairs):
// a variable named after a configuration key must hold a value of its
// kind. A variable that names no key but looks like one is a mistake: one
// within two typing slips of a key's variable (SIGNET_SERVER_LISTNE), or
// one under roles or presets, which only the file can set. Other SIGNET_
// variables (SIGNET_URL, SIGNET_USER, SIGNET_PASSWORD of `signet token`,
// the test harness's SIGNET_UI_CHROMIUM) are not configuration and are
// left alone.
func checkEnv(environ []string) error {
	known := map[string]string{} // variable → key
	types := map[string]reflect.Type{}
	leaves(reflect.TypeFor[Config](), reflect.ValueOf(Config{}), "", func(key string, t reflect.Type, _ reflect.Value) {
		known[envName(key)] = key
		types[key] = t
	})
	sections := map[string]bool{}
	for _, name := range fieldNames(reflect.TypeFor[Config]()) {
		sections[strings.ToUpper(name)] = true
	}
	var errs []error
	names := []string{}
	values := map[string]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "SIGNET_") {
			continue
		}
		names = append(names, name)
		values[name] = value
	}
	slices.Sort(names)
	for _, name := range names {
		value := values[name]
		key, ok := known[name]
		if !ok {
			section, _, _ := strings.Cut(strings.TrimPrefix(name, "SIGNET_"), "_")
			if hint := suggestEnv(name, known); sections[section] && hint != "" {
				errs = append(errs, &Error{Key: strings.ToLower(section), Where: "environment variable " + name, Problem: "no configuration key has this variable" + hint})
			}
			continue
		}
		t := types[key]
		var err error
		if t.Kind() == reflect.Slice {
			for _, item := range strings.Split(value, ",") {
				if err = checkScalar(t.Elem(), strings.TrimSpace(item), ""); err != nil {
					break
				}
			}
		} else {
			err = checkScalar(t, value, "")
		}
		if err != nil {
			errs = append(errs, &Error{Key: key, Where: "environment variable " + name, Problem: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// suggestEnv proposes the variable an unknown SIGNET_ name was meant to
// be; "" when it does not look like a configuration variable at all.
func suggestEnv(name string, known map[string]string) string {
	best, bestD := "", 3
	for k := range known {
		if d := editDistance(name, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %s?", best)
	}
	if strings.HasPrefix(name, "SIGNET_ROLES_") || strings.HasPrefix(name, "SIGNET_PRESETS_") {
		return " (roles and presets are set in the file only)"
	}
	return ""
}
