package transform

import "bytes"

// EachLine calls fn for each non-blank line of a record, numbered from 1,
// without its line ending. A Kafka record usually holds one line, but
// shippers that batch (or files sent whole) put several in one record.
func EachLine(rec []byte, fn func(n int, line []byte)) {
	n := 0
	for len(rec) > 0 {
		var line []byte
		if i := bytes.IndexByte(rec, '\n'); i >= 0 {
			line, rec = rec[:i], rec[i+1:]
		} else {
			line, rec = rec, nil
		}
		n++
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fn(n, line)
	}
}
