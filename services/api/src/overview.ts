import { DELIVERY_STATES } from '@mssgw/lifecycle';

/** The states the overview counts as failures, by reason. */
const FAILED_STATES = ['failed', 'dead-lettered', 'refused', 'unconfirmed', 'processing-error'];

/**
 * The console overview's four counts (console.ts, computeOverview), each over the last day or hour, each reading its
 * range of one index; also timed and explained alone by the benchmark (bench/console.ts).
 */
export const OVERVIEW_QUERIES = {
  // Recipients of the results received in the window, by their state now: one range of deliveries_state per state.
  states: {
    text: `select state, count(*) filter (where received_at >= $2) as hour, count(*) as day
         from deliveries where state = any($3::text[]) and received_at >= $1 group by state`,
    params: (day: Date, hour: Date): unknown[] => [day, hour, [...DELIVERY_STATES]],
  },
  // One pass over the day's results (results_received): per source, per hour, and whether in the last hour.
  received: {
    text: `select source, date_trunc('hour', received_at) as at, received_at >= $2 as recent, count(*) as count
         from results where received_at >= $1 group by 1, 2, 3`,
    params: (day: Date, hour: Date): unknown[] => [day, hour],
  },
  // Per source and state, the last hour only: the recipients reach their result's source through its row.
  sourceStates: {
    text: `select r.source, d.state, count(*) as count from deliveries d join results r on r.id = d.result_row
         where d.state = any($2::text[]) and d.received_at >= $1 and r.received_at >= $1 group by 1, 2`,
    params: (_day: Date, hour: Date): unknown[] => [hour, [...DELIVERY_STATES]],
  },
  failures: {
    text: `select state, reason, count(*) as count from deliveries where state = any($2::text[]) and received_at >= $1 group by state, reason order by count desc limit 20`,
    params: (day: Date): unknown[] => [day, FAILED_STATES],
  },
} as const;
