package schemas

import (
	"strings"
	"testing"
)

// pairingBlock returns the text between the "-- pairing begin" and
// "-- pairing end" lines of a query, indentation removed.
func pairingBlock(sql string) string {
	var out []string
	in := false
	for _, l := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "-- pairing begin") {
			in = true
		}
		if in {
			out = append(out, t)
		}
		if strings.HasPrefix(t, "-- pairing end") {
			break
		}
	}
	return strings.Join(out, "\n")
}

// TestIncidentPairingIsShared keeps the pairing rules identical in every
// incident_* query: the incident tests prove one copy against the truth.
func TestIncidentPairingIsShared(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	var first, firstName string
	for _, q := range qs {
		if !strings.HasPrefix(q.Name, "incident_") {
			continue
		}
		b := pairingBlock(q.SQL)
		if b == "" || !strings.HasSuffix(b, "-- pairing end") {
			t.Errorf("%s has no complete pairing block", q.Name)
			continue
		}
		if first == "" {
			first, firstName = b, q.Name
		} else if b != first {
			t.Errorf("pairing block of %s differs from %s's", q.Name, firstName)
		}
	}
	if first == "" {
		t.Fatal("no incident_ query")
	}
}
