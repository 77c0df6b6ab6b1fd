package pipeline

import (
	"errors"
	"time"

	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// table is a batch of the rows of records of kind R (package tables:
// JobEvents, CDNRequests).
type table[R transform.Record] interface {
	Batch
	Append(r *R, m tables.Meta, now time.Time, rawBytes int)
}

// rows is a partition's buffer of records of kind R: the stage that
// parses and enriches them, the batch of their table, and the hooks that
// see them. One record is reused for every line.
type rows[R transform.Record] struct {
	stage transform.Stage[R]
	table table[R]
	hooks []RecordHook[R]
	rec   R
}

// kindRows is what a worker needs of its rows[R], whatever R.
type kindRows interface {
	// add parses line into a row of the batch; a record already stored
	// (at or below the table's watermark) is parsed but not added. It
	// returns the parser's error (transform.ErrSkip for a line without a
	// record).
	add(w *worker, line []byte, meta tables.Meta, now time.Time) error
	batch() Batch
}

// rowsOf returns how a partition buffers the records of a stream whose
// parser p makes records of kind R: mk gives each partition its rows,
// seen by the RecordHook[R]s among hs, after extra hooks of its own.
func rowsOf[R transform.Record, T table[R]](p transform.Parser, vendor string, newTable func() T, hs []Hook) (mk func(extra ...RecordHook[R]) kindRows, err error) {
	stage, ok := transform.NewStage[R](p, vendor)
	if !ok {
		return nil, errors.New("the format's parser does not make the records of its kind")
	}
	hooks := hooksOf[RecordHook[R]](hs)
	return func(extra ...RecordHook[R]) kindRows {
		return &rows[R]{stage: stage, table: newTable(), hooks: append(extra, hooks...)}
	}, nil
}

func (k *rows[R]) add(w *worker, line []byte, meta tables.Meta, now time.Time) error {
	if err := k.stage.Parse(line, &k.rec); err != nil {
		return err
	}
	if w.stored(k.table.Table(), meta.Offset) {
		return nil
	}
	k.stage.Enrich(w.enricher, &k.rec)
	k.table.Append(&k.rec, meta, now, len(line))
	for _, h := range k.hooks {
		h.OnRecord(&k.rec, meta)
	}
	return nil
}

func (k *rows[R]) batch() Batch { return k.table }
