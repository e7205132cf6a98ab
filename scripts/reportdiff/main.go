// Command reportdiff compares two srtool JSON reports after dropping the fields
// that differ between two runs of the same computation (wall-clock times,
// rates, memory, the tool version and the temporary paths of the run), so that
// scripts/golden_reports.sh can prove a change of code left every result as it
// was.
//
//	reportdiff WANT.json GOT.json   exit 1 and list the differing paths
//	reportdiff -normalize F.json    print F.json normalised (for saving)
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
)

// volatile reports whether a field of this name holds something a rerun of
// the same computation changes: durations, speeds, memory, versions.
func volatile(key string) bool {
	k := strings.ToLower(key)
	switch k {
	case "seconds", "version", "go_version", "command_line", "fingerprint", "images_per_second":
		return true
	}
	for _, suffix := range []string{"_seconds", "_s", "_per_s", "_per_second", "_mib", "_rss"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// normalize drops volatile fields at every depth.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			if !volatile(k) {
				out[k] = normalize(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = normalize(x)
		}
		return out
	}
	return v
}

func read(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return normalize(v), nil
}

// diff appends the paths where a and b differ.
func diff(path string, a, b any, out *[]string) {
	ma, oka := a.(map[string]any)
	mb, okb := b.(map[string]any)
	if oka && okb {
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			diff(path+"."+k, ma[k], mb[k], out)
		}
		return
	}
	sa, oka := a.([]any)
	sb, okb := b.([]any)
	if oka && okb && len(sa) == len(sb) {
		for i := range sa {
			diff(fmt.Sprintf("%s[%d]", path, i), sa[i], sb[i], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		*out = append(*out, fmt.Sprintf("%s: want %.200s, got %.200s", path, ja, jb))
	}
}

func main() {
	norm := flag.Bool("normalize", false, "print the one report normalised")
	flag.Parse()
	if *norm {
		if flag.NArg() != 1 {
			fmt.Fprintln(os.Stderr, "reportdiff: -normalize takes one report")
			os.Exit(2)
		}
		v, err := read(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "reportdiff:", err)
			os.Exit(1)
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Println(string(b))
		return
	}
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: reportdiff WANT.json GOT.json | reportdiff -normalize F.json")
		os.Exit(2)
	}
	want, err := read(flag.Arg(0))
	if err == nil {
		var got any
		if got, err = read(flag.Arg(1)); err == nil {
			var out []string
			diff("", want, got, &out)
			if len(out) > 0 {
				fmt.Fprintf(os.Stderr, "reportdiff: %s differs from %s in %d place(s):\n", flag.Arg(1), flag.Arg(0), len(out))
				for _, s := range out {
					fmt.Fprintln(os.Stderr, "  "+s)
				}
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintln(os.Stderr, "reportdiff:", err)
	os.Exit(1)
}
