/**
 * Every repository the app is installed on, every page of it: the rollout tick finds running
 * rollouts after a restart here, so a repository past the first 100 must not be forgotten.
 */
import type { RepoRef } from '../github/port.js';

interface Paginating {
  paginate(route: string, params?: Record<string, unknown>): Promise<unknown[]>;
}

export async function installedRepositories(auth: (installation?: number) => Promise<unknown>): Promise<RepoRef[]> {
  const app = (await auth()) as Paginating;
  const out: RepoRef[] = [];
  const installs = (await app.paginate('GET /app/installations', { per_page: 100 })) as { id: number }[];
  for (const i of installs) {
    const octokit = (await auth(i.id)) as Paginating;
    // paginate() unwraps `repositories` from each page of this route.
    const repos = (await octokit.paginate('GET /installation/repositories', { per_page: 100 })) as { name: string; owner: { login: string } }[];
    for (const r of repos) out.push({ owner: r.owner.login, repo: r.name });
  }
  return out;
}
