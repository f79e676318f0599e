/**
 * bench/pr: what one pull-request event costs. A local server on 127.0.0.1 stands in for GitHub
 * (installation token, tarball → codeload redirect, comments, pulls, check runs) and counts
 * requests; the real app runs in Probot against it, with real `git archive` tarballs.
 *
 *   npm run bench:pr
 *
 * Prints: GitHub API requests per event for fleets of 10, 100 and 1,000 hosts (cold cache;
 * target ≤ 6, the same for every size), and the time from webhook to comment body for 1,000
 * hosts × 200 templates with one template changed (target < 3 s).
 */
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Probot, ProbotOctokit } from 'probot';
import { dotfleetApp } from '../dist/app/index.js';
import { workerCompute } from '../dist/app/compute.js';
import { generateFleet, git, gitRepoOf } from './generate-fleet.mjs';


function fleetRepo(hosts, templates, wide = false) {
  const tree = generateFleet({ hosts, templates, mix: wide ? 'realistic' : 'worst' });
  const { dir, commit: base } = gitRepoOf(tree, 'dotfleet-bench-pr-');
  if (wide) {
    // Fleet-wide: a value every template prints, so every host's output differs.
    const d = 'home/.chezmoidata.toml';
    writeFileSync(join(dir, d), Buffer.from(tree.get(d)).toString().replace('name = "Bench User"', 'name = "Bench Person"'));
  } else {
    const t = 'home/dot_config/app7/conf-7.toml.hbs';
    writeFileSync(join(dir, t), Buffer.from(tree.get(t)).toString().replace('[general]', '[general]\nchanged = true'));
  }
  git(dir, 'commit', '-qam', wide ? 'fleet-wide' : 'one template');
  const head = git(dir, 'rev-parse', 'HEAD');
  const tarballs = new Map([base, head].map((sha) => [sha, execFileSync('git', ['-C', dir, 'archive', '--format=tar.gz', `--prefix=o-r-${sha.slice(0, 7)}/`, sha])]));
  return { base, head, tarballs };
}

function fakeGitHub(fleet) {
  const requests = [];
  let commentReady;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      const route = `${req.method} ${url.pathname}`;
      requests.push(route);
      const json = (status, data) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(data));
      };
      let m;
      if (route === 'POST /app/installations/1/access_tokens') return json(201, { token: 't', expires_at: new Date(Date.now() + 3600e3).toISOString(), permissions: {} });
      if ((m = /^GET \/repos\/o\/r\/tarball\/(\w+)$/.exec(route))) {
        res.writeHead(302, { location: `http://127.0.0.1:${server.address().port}/codeload/o/r/legacy.tar.gz/${m[1]}` });
        return res.end();
      }
      if ((m = /^GET \/codeload\/o\/r\/legacy\.tar\.gz\/(\w+)$/.exec(route))) {
        res.writeHead(200, { 'content-type': 'application/x-gzip' });
        return res.end(fleet.tarballs.get(m[1]));
      }
      if (route === 'GET /repos/o/r/issues/2/comments') return json(200, []);
      if (route === 'GET /repos/o/r/pulls/2') return json(200, { number: 2, head: { sha: fleet.head }, base: { sha: fleet.base, ref: 'main' } });
      if (/^GET \/repos\/o\/r\/git\/ref\/heads(%2F|\/)main$/.test(route)) return json(200, { object: { sha: fleet.base } });
      if (/^GET \/repos\/o\/r\/commits\/\w+\/check-runs$/.test(route)) return json(200, { check_runs: [] });
      if (route === 'POST /repos/o/r/issues/2/comments') {
        commentReady?.(JSON.parse(body).body);
        return json(201, { id: 1 });
      }
      if (route === 'POST /repos/o/r/check-runs') return json(201, { id: 1 });
      json(404, { message: `not in the stand-in: ${route}` });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, requests, port: server.address().port, commentPromise: () => new Promise((r) => (commentReady = r)) }),
    ),
  );
}

function payload(fleet) {
  const repo = { id: 1, name: 'r', full_name: 'o/r', owner: { login: 'o', type: 'User' }, default_branch: 'main', private: false };
  return {
    action: 'opened',
    number: 2,
    installation: { id: 1 },
    repository: repo,
    sender: { login: 'someone', type: 'User' },
    pull_request: { number: 2, base: { sha: fleet.base, ref: 'main', repo }, head: { sha: fleet.head, ref: 'change', repo }, draft: false },
  };
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

async function event(hosts, templates, wide = false) {
  const fleet = fleetRepo(hosts, templates, wide);
  const gh = await fakeGitHub(fleet);
  const probot = new Probot({ appId: 1, privateKey, baseUrl: `http://127.0.0.1:${gh.port}`, logLevel: 'warn', Octokit: ProbotOctokit.defaults({ retry: { enabled: false }, throttle: { enabled: false } }) });
  let bodyReady = 0;
  const compute = workerCompute();
  probot.load(dotfleetApp({ compute: async (input) => { const r = await compute(input); bodyReady = performance.now() - t0; return r; } }));
  const comment = gh.commentPromise();
  const t0 = performance.now();
  globalThis.t0 = t0;
  const done = probot.receive({ id: `bench-${hosts}${wide ? "-wide" : ""}`, name: 'pull_request', payload: payload(fleet) });
  const body = await comment;
  const toComment = performance.now() - t0;
  await done;
  gh.server.close();
  const api = gh.requests.filter((r) => !r.startsWith('GET /codeload/') && !r.includes('access_tokens'));
  return { hosts, templates, api: api.length, downloads: gh.requests.length - api.length - 1, toComment, bodyReady, bodyChars: body.length, routes: api };
}

console.log(`bench/pr — one pull_request.opened event, node ${process.version}`);
for (const hosts of [10, 100, 1000]) {
  const r = await event(hosts, 200);
  console.log(`${String(hosts).padStart(5)} hosts × 200 templates: ${r.api} GitHub API requests (+ ${r.downloads} tarball downloads, + 1 installation token) · webhook → comment body ready ${r.bodyReady.toFixed(0)} ms · → comment posted ${r.toComment.toFixed(0)} ms · ${r.bodyChars.toLocaleString('en')} chars`);
  if (hosts === 10) console.log(`      requests: ${r.routes.join(', ')}`);
}
{
  const r = await event(1000, 200, true);
  console.log(` 1000 hosts × 200 templates, a fleet-wide change (every host's output differs, realistic mix): webhook → comment body ready ${r.bodyReady.toFixed(0)} ms · → comment posted ${r.toComment.toFixed(0)} ms (target ≤ 4,000) · ${r.bodyChars.toLocaleString('en')} chars`);
}
console.log('targets: ≤ 8 API requests (the default branch head for trust and the check-run lookup came with issue 12), the same for every size; body ready < 3,000 ms for 1,000 hosts × 200 templates');
console.log('(posted includes Octokit\'s throttling, which spaces content-creating requests about 1 s apart across events, as GitHub asks)');
process.exit(0);
