package apply

import (
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// AuditKey is the meta key of the trail's record of the change at index.
func AuditKey(index uint64) string { return fmt.Sprintf("%s%016x", schema.AuditPrefix, index) }

// recordAudit adds the trail's record of one membership entry: what it
// changed (or why apply refused it), from what the entry carries and the
// replicated membership, so every member writes the same record. The trail
// is then cut to the leader's bound.
func (a *Applier) recordAudit(b Batch, e *raftpb.Entry, cc membership.ConfChange, before []*membership.Member, applyErr error) {
	rec := membership.AuditRecord{
		Index:   e.GetIndex(),
		Term:    e.GetTerm(),
		By:      "(not recorded)", // bootstrap, restore, or an entry older than the trail
		Action:  membership.ActionOfConfChange(cc, before),
		Member:  membership.IDString(cc.NodeID),
		Before:  membership.Summarize(before),
		After:   membership.Summarize(a.cfg.Members.Members()),
		Outcome: "applied",
	}
	keep := membership.DefaultAuditKeep
	if au := cc.Audit; au != nil {
		rec.By, rec.Verdict = au.By, au.Verdict
		if au.At > 0 {
			rec.At = time.UnixMilli(au.At).UTC()
		}
		if au.Keep > 0 {
			keep = au.Keep
		}
	}
	if m := cc.Member; m != nil {
		rec.Name, rec.PeerURLs = m.Name, m.PeerURLs
	}
	for _, m := range before {
		if m.ID == cc.NodeID && rec.Name == "" {
			rec.Name = m.Name
		}
	}
	if applyErr != nil {
		rec.Outcome = "rejected at apply: " + applyErr.Error()
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return
	}
	b.SetMeta(AuditKey(e.GetIndex()), raw)
	if keys := b.MetaKeys(schema.AuditPrefix); len(keys) > keep {
		for _, k := range keys[:len(keys)-keep] {
			b.SetMeta(k, nil)
		}
	}
}
