-- The shard of a wallet, chama or deposit id, as actors/shards.ts `shardOf` computes it (FNV-1a,
-- 32 bits, over the id's characters; ids are UUIDs, so ASCII: one byte per character), so background
-- workers read only the outbox rows of the shards their node holds (src/workers/ownership.ts).
-- Never change one without the other: test/workers/ownership.test.ts checks they agree.
-- (About 10 µs a call: a worker's query scans its pending rows in seq order and stops at its batch.)
create or replace function coffer_shard_of(id text, shard_count int) returns int
language plpgsql immutable strict parallel safe as $$
declare
  h bigint := 2166136261;
  b bytea := convert_to(id, 'UTF8');
begin
  for i in 0 .. length(b) - 1 loop
    h := ((h # get_byte(b, i)) * 16777619) & 4294967295;
  end loop;
  return (h % shard_count)::int;
end
$$;
