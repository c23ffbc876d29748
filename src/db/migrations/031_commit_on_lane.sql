-- coffer_commit on a commit lane (actors/commit-queue.ts), as ONE statement in its own implicit
-- transaction: the lane's order check, the write and the lane's new token, where a lane statement
-- used to be three messages (`begin read write` with the check, `select coffer_commit(...)`, `commit`).
--
-- A lane sends statements one behind the other on its own connection without waiting for answers.
-- Statement N+1 may have been computed on N's uncommitted state, so it must write only if N
-- committed. Each statement sets the session setting `coffer.lane` to its own token; a setting made
-- in a transaction that fails is rolled back with it, and a new connection has none. So when
-- `expect` (the token of the statement sent just before this one) is given and the setting does
-- not hold it, the statement before failed, or this is not the connection it was sent on: raise
-- SQLSTATE CF412 and write nothing. Tokens are the queue's own (digits and a dot).
create or replace function coffer_commit_on_lane(batch jsonb, keys json, expect text, token text) returns void
language plpgsql as $$
declare
  held text := current_setting('coffer.lane', true);
begin
  if expect is not null and held is distinct from expect then
    raise exception 'commit lane out of step: % where % was expected', coalesce(held, 'unset'), expect
      using errcode = 'CF412';
  end if;
  perform set_config('coffer.lane', token, false);
  perform coffer_commit(batch, keys);
end
$$;
