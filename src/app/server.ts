/**
 * The app's process, as the container and `npm start` run it: Probot's server with the dotfleet
 * app, configured from the environment (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET, PORT, HOST,
 * REDIS_URL, DOTFLEET_*; docs/operations.md). `probot run ./dist/app/index.js` does the same.
 */
import { run } from 'probot';
import app from './index.js';

await run(app);
