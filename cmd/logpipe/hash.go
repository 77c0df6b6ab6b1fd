package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/transform"
)

// cmdHash prints, for each id read one a line, the keyed hash logpipe
// stores for it (session_hash, owner_session, viewer_session): support
// joins the incident reports back to their own session or user table.
//
//	logpipe hash -key-file /etc/logpipe/hash.key < session_ids.txt
//
// The key is read as logpipe run reads it: from -key-file (or the config's
// hash.key / hash.key_file with -config), trailing newline removed,
// hex-decoded when it is hex; LOGPIPE_HASH_KEY also works. Output lines are
// "id<TAB>hash"; an empty line hashes to 0, like an absent cookie.
func cmdHash(_ context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("hash", flag.ContinueOnError)
	keyFile := fs.String("key-file", "", "file holding the hash key (hash.key_file)")
	cfgPath := fs.String("config", "", "read the key from this config file instead (hash.key or hash.key_file)")
	onlyHash := fs.Bool("only-hash", false, "print the hashes alone, one a line")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("hash: unexpected argument %q: ids are read from standard input", fs.Arg(0))}
	}
	key, err := hashKey(*keyFile, *cfgPath, os.Getenv("LOGPIPE_HASH_KEY"))
	if err != nil {
		return err
	}
	enr, err := transform.NewEnricher(transform.EnrichConfig{HashKey: key})
	if err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64*1024), 1<<20)
	out := bufio.NewWriter(stdout)
	line := 0
	for in.Scan() {
		line++
		id := strings.TrimRight(in.Text(), "\r")
		if *onlyHash {
			fmt.Fprintf(out, "%d\n", enr.Hash(id))
		} else {
			fmt.Fprintf(out, "%s\t%d\n", id, enr.Hash(id))
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("hash: standard input after line %d: %w", line, err)
	}
	return out.Flush()
}

// hashKey returns the key bytes exactly as logpipe run derives them.
func hashKey(keyFile, cfgPath, env string) ([]byte, error) {
	var c config.Config
	switch {
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("hash: -key-file: %w", err)
		}
		c.Hash.Key = strings.TrimRight(string(b), "\r\n")
	case cfgPath != "":
		loaded, err := config.Load(cfgPath, os.Environ())
		if err != nil {
			return nil, fmt.Errorf("hash: %w", err)
		}
		c = loaded
	case env != "":
		c.Hash.Key = env
	default:
		return nil, usageError{errors.New("hash: give -key-file FILE (or -config FILE, or LOGPIPE_HASH_KEY)")}
	}
	return c.HashKey(), nil
}
