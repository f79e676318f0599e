/** The Action's process: handle the event, then exit with its code (no timer or socket keeps it alive). */
import { main } from './main.js';

const code = await main();
process.stdout.write('', () => process.exit(code));
