import { benchDispatch } from '../bench/dispatch.ts';
console.log(JSON.stringify(await benchDispatch({ results: 3000, pacedMailsPerSecond: 300, pacedSeconds: 10, backlog: 1_000_000 })));
