/**
 * The rollout tick's discovery after a restart: every installation and every repository, past
 * GitHub's 100 per page (the Link header), as Octokit's paginate follows it.
 */
import nock from 'nock';
import { ProbotOctokit } from 'probot';
import { installedRepositories } from '../../src/app/installations.js';
import { API } from '../helpers/github.js';

describe('installedRepositories', () => {
  beforeAll(() => nock.disableNetConnect());
  afterAll(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('follows every page of installations and of each installation\'s repositories', async () => {
    const page = (items: unknown[], n: number, last: number, path: string): [number, any, Record<string, string>] => [
      200,
      items,
      n < last ? { link: `<${API}${path}?per_page=100&page=${n + 1}>; rel="next", <${API}${path}?per_page=100&page=${last}>; rel="last"` } : {},
    ];
    const installs = Array.from({ length: 101 }, (_, i) => ({ id: i + 1 }));
    nock(API)
      .get('/app/installations')
      .query({ per_page: '100' })
      .reply(...page(installs.slice(0, 100), 1, 2, '/app/installations'))
      .get('/app/installations')
      .query({ per_page: '100', page: '2' })
      .reply(...page(installs.slice(100), 2, 2, '/app/installations'));
    // Installation 101 (on the second page) has 130 repositories, over two pages; the others one each.
    const repos = Array.from({ length: 130 }, (_, i) => ({ name: `fleet-${i}`, owner: { login: 'big-org' } }));
    nock(API)
      .persist()
      .get('/installation/repositories')
      .query(true)
      .reply(function (uri) {
        const id = Number(/token t-(\d+)/.exec(String(this.req.headers.authorization))![1]);
        if (id !== 101) return [200, { total_count: 1, repositories: [{ name: `fleet`, owner: { login: `org-${id}` } }] }];
        const n = Number(new URL(uri, API).searchParams.get('page') ?? '1');
        const [status, , headers] = page([], n, 2, '/installation/repositories');
        return [status, { total_count: 130, repositories: repos.slice((n - 1) * 100, n * 100) }, headers];
      });
    const octokit = (token: string) => new ProbotOctokit({ auth: { token }, throttle: { enabled: false }, retry: { enabled: false } });
    const found = await installedRepositories(async (id) => octokit(id === undefined ? 'app' : `t-${id}`));
    expect(found).toHaveLength(100 + 130);
    expect(found[0]).toEqual({ owner: 'org-1', repo: 'fleet' });
    expect(found.filter((r) => r.owner === 'big-org').map((r) => r.repo)).toEqual(repos.map((r) => r.name));
  });
});
