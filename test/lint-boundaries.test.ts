import t from 'tap'
import { join } from 'node:path'
import { ESLint } from 'eslint'

const root = join(import.meta.dirname, '..')

/** Lints the fixture `source` with the project's config as if it were the file at `path`. */
async function lint (path: string, source: string): Promise<string[]> {
  const [result] = await new ESLint({ cwd: root }).lintText(source, { filePath: join(root, path) })
  return result.messages.filter(m => m.ruleId === 'no-restricted-imports').map(m => m.message)
}

t.test('a service or an OAuth rule importing Fastify, a plugin or a route fails the lint', async t => {
  const cases = [
    ['src/authorization/lint-probe-fastify.ts', "import type { FastifyInstance } from 'fastify'\n\nexport type X = FastifyInstance\n", /do not use Fastify/],
    ['src/authorization/lint-probe-plugin.ts', "import fp from 'fastify-plugin'\n\nexport const x = fp\n", /do not use Fastify/],
    ['src/oauth/lint-probe-cookie.ts', "import cookie from '@fastify/cookie'\n\nexport const x = cookie\n", /do not use Fastify/],
    ['src/authorization/lint-probe-grants.ts', "import grants from '../plugins/grants.js'\n\nexport const x = grants\n", /no plugin or route/],
    ['src/oauth/lint-probe-route.ts', "import token from '../routes/token.js'\n\nexport const x = token\n", /no plugin or route/]
  ] as const
  for (const [path, source, message] of cases) {
    t.match(await lint(path, source), [message], path)
  }
})

t.test('the same imports are fine in a plugin, and a service importing a rule is fine', async t => {
  t.same(await lint('src/plugins/lint-probe.ts', "import fp from 'fastify-plugin'\n\nexport const x = fp\n"), [])
  t.same(await lint('src/authorization/lint-probe-ok.ts', "import { OAuthError } from '../oauth/errors.js'\n\nexport const x = OAuthError\n"), [])
})
