import neostandard from 'neostandard'

/**
 * The authorization server's services and the OAuth rules stay free of the HTTP framework, so
 * they can be read and tested alone: no Fastify, no plugin, no route (test/lint-boundaries.test.ts).
 */
const FRAMEWORK_FREE = {
  files: ['src/authorization/**/*.ts', 'src/oauth/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [
        { group: ['fastify', 'fastify-*', '@fastify/*'], message: 'services and OAuth rules do not use Fastify: a plugin adapts them' },
        { group: ['**/plugins/*', '**/routes/*'], message: 'services and OAuth rules import no plugin or route: plugins and routes import them' }
      ]
    }]
  }
}

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', '.tools/**', 'chart/**', 'bench/tmp/**'] }),
  FRAMEWORK_FREE
]
