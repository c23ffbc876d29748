-- Rate-limit windows, shared by every node. A node reserves a slice of a window's allowance at a
-- time (one statement), then spends it locally; the row never grants more than the limit, so the
-- limit holds across nodes exactly, and a busy bucket costs a write per slice, not per request.
create table rate_windows (
  bucket       text not null,
  window_start bigint not null,     -- epoch milliseconds, a multiple of the window length
  used         int not null,
  last_grant   int not null,
  primary key (bucket, window_start)
);
create index rate_windows_start on rate_windows using brin (window_start);
