import { loadFleet, getHost, contextFor } from '../../src/core/fleet.js';
import { DotfleetError } from '../../src/core/errors.js';
import { Renderer } from '../../src/core/render.js';
import { miniFleet } from '../helpers/fleet.js';

function loadError(tree: Map<string, Uint8Array>): DotfleetError {
  try {
    loadFleet(tree);
  } catch (e) {
    if (e instanceof DotfleetError) return e;
    throw e;
  }
  throw new Error('expected loadFleet to fail');
}

describe('inventory and presets', () => {
  it('names the host, field and line of an inventory mistake', () => {
    const err = loadError(miniFleet({ hosts: '[hosts.alpha]\nmachine = "laptop"\nplatform = "darwin"\n\n[hosts.beta]\nmachine = "server"\nplatform = "beos"\n' }));
    expect(err.code).toBe('schema');
    expect(err.file).toBe('fleet/hosts.toml');
    expect(err.line).toBe(7);
    expect(err.message).toMatch(/^hosts\.beta\.platform: /);
  });

  it('refuses unknown host fields instead of ignoring a typo', () => {
    const err = loadError(miniFleet({ hosts: '[hosts.alpha]\nmachine = "laptop"\nplatform = "darwin"\nwaev = 2\n' }));
    expect(err.message).toMatch(/waev/);
    expect(err.line).toBe(1);
  });

  it('refuses host names that could not be file names or principals', () => {
    const err = loadError(miniFleet({ hosts: '[hosts."../etc"]\nmachine = "laptop"\nplatform = "darwin"\n' }));
    expect(err.message).toBe('"../etc" is not a valid host name');
    expect(err.line).toBe(1);
    expect(err.hint).toMatch(/letters, digits/);
  });

  it('validates age recipients exactly', () => {
    const err = loadError(miniFleet({ hosts: '[hosts.alpha]\nmachine = "laptop"\nplatform = "darwin"\nage_recipient = "age1notreally"\n' }));
    expect(err.message).toMatch(/age_recipient: "age1notreally" is not an age public key: an age recipient is 62 characters long/);
    expect(err.line).toBe(4);
  });

  it('locates a preset missing a required field', () => {
    const tree = miniFleet();
    tree.set('home/.chezmoidata/hardware.toml', Buffer.from('[hardware.laptop]\ndisplay_scale = 2.0\nkbd_layout = "us"\n'));
    const err = loadError(tree);
    expect(err.file).toBe('home/.chezmoidata/hardware.toml');
    expect(err.message).toMatch(/^hardware\.laptop\.modifier_mode: /);
    expect(err.line).toBe(1);
  });

  it('fails one host, not the fleet, when its machine is not a preset', () => {
    const tree = miniFleet({ hosts: '[hosts.alpha]\nmachine = "laptop"\nplatform = "darwin"\n\n[hosts.gamma]\nmachine = "lapotp"\nplatform = "linux"\n' });
    tree.set('home/dot_x.hbs', Buffer.from('{{host.name}}\n'));
    const fleet = loadFleet(tree);
    const r = new Renderer();
    expect(r.renderHost(fleet, getHost(fleet, 'alpha')).errors).toEqual([]);
    const [err] = r.renderHost(fleet, getHost(fleet, 'gamma')).errors;
    expect(err!.code).toBe('unknown-preset');
    expect(err!.host).toBe('gamma');
    expect(err!.line).toBe(6);
    expect(err!.hint).toMatch(/use one of: laptop, server/);
  });

  it('layers the context: fleet data, then hw (the preset), then host overrides, plus host facts', () => {
    const tree = miniFleet({
      data: 'user = "robin"\n[terminal]\nsize = 11\nfont = "mono"\n',
      hosts: '[hosts.alpha]\nmachine = "laptop"\nplatform = "darwin"\nwave = 3\n[hosts.alpha.data.terminal]\nsize = 9\n[hosts.alpha.data.hw]\nwm = "yabai"\n',
    });
    const fleet = loadFleet(tree);
    const ctx = contextFor(fleet, getHost(fleet, 'alpha'));
    expect(ctx.terminal).toEqual({ size: 9, font: 'mono' });
    expect((ctx.hw as any).wm).toBe('yabai');
    expect((ctx.hw as any).display_scale).toBe(2);
    expect(ctx.host).toEqual({ name: 'alpha', machine: 'laptop', platform: 'darwin', wave: 3, principal: 'alpha', tags: [] });
    expect(ctx).not.toHaveProperty('hardware');
  });

  it('sets boolean features another preset declares to false', () => {
    const fleet = loadFleet(miniFleet());
    expect(fleet.presets.get('server')!.features).toEqual({ touchbar: false });
  });

  it('says which hosts exist when asked for an unknown one', () => {
    const fleet = loadFleet(miniFleet());
    expect(() => getHost(fleet, 'zeta')).toThrow(DotfleetError);
    try {
      getHost(fleet, 'zeta');
    } catch (e) {
      expect((e as DotfleetError).hint).toBe('known hosts: alpha, beta');
    }
  });

  it('reports an invalid settings file with its name', () => {
    const tree = miniFleet();
    tree.set('.github/dotfleet.yml', Buffer.from('inventory: ../outside.toml\n'));
    const err = loadError(tree);
    expect(err.file).toBe('.github/dotfleet.yml');
    expect(err.message).toMatch(/inventory: must be a path inside the repository/);
  });
});

describe('the fleet says plainly what is wrong with it', () => {
  it('an empty inventory: no hosts, and where to add them', () => {
    const err = loadError(miniFleet({ hosts: '' }));
    expect(err.message).toBe('fleet/hosts.toml has no hosts');
    expect(err.hint).toMatch(/\[hosts\.NAME\] table per host/);
  });

  it('host names that differ only by case are refused, at the second one\'s line', () => {
    const err = loadError(miniFleet({ hosts: '[hosts.alpha]\nmachine = "laptop"\nplatform = "darwin"\n\n[hosts.Alpha]\nmachine = "laptop"\nplatform = "darwin"\n' }));
    expect(err.message).toBe('hosts "alpha" and "Alpha" differ only by case');
    expect(err.line).toBe(5);
  });

  it('a missing source directory is one error, not "unknown preset" on every host', () => {
    const tree = new Map([...miniFleet()].filter(([p]) => !p.startsWith('home/')));
    const err = loadError(tree);
    expect(err.message).toBe('the source directory home/ does not exist');
    const named = new Map(miniFleet()).set('.chezmoiroot', Buffer.from('dotfiles\n'));
    expect(loadError(named)).toMatchObject({ message: 'the source directory dotfiles/ does not exist', file: '.chezmoiroot' });
  });

  it('a YAML error in the settings names its line and column', () => {
    const err = loadError(new Map(miniFleet()).set('.github/dotfleet.yml', Buffer.from('state_branch: x\ninventory: [\n')));
    expect(err.file).toBe('.github/dotfleet.yml');
    expect(err.line).toBe(3);
    expect(err.message).toMatch(/^invalid YAML: /);
    expect(err.message).not.toMatch(/at line/);
  });
});
