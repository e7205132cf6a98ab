package report

import (
	"testing"

	"github.com/semirobust/srtool/shard"
)

func TestHeaderSetShard(t *testing.T) {
	var h Header
	lo, hi := h.SetShard(shard.Shard{Index: 1, Count: 3}, 10)
	if want := (Sharding{Shard: shard.Shard{Index: 1, Count: 3}, Lo: lo, Hi: hi, Total: 10}); h.Sharding == nil || *h.Sharding != want {
		t.Errorf("Sharding = %+v; want %+v", h.Sharding, want)
	}
	if elo, ehi := (shard.Shard{Index: 1, Count: 3}).Range(10); lo != elo || hi != ehi {
		t.Errorf("SetShard range [%d, %d); want shard.Range's [%d, %d)", lo, hi, elo, ehi)
	}
}
