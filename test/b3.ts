import { benchDispatch } from '../bench/dispatch.ts';
console.log(await benchDispatch({ results: 2000, pacedMailsPerSecond: 300, pacedSeconds: 10, backlog: Number(process.env.BL ?? 0) }));
