import 'dotenv/config'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError } from './config/config-error.js'
import { misspeltSettings } from './config/env-typos.js'

// Process entry: listen, and on SIGTERM/SIGINT let in-flight requests finish, end SSE streams
// and quit Redis before exiting.
let app
try {
  app = await buildApp({ env: process.env })
  await app.listen({ host: app.config.env.HOST, port: app.config.env.PORT })
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `Start-up failed: ${(err as Error).message}`)
  // A misspelt variable is often why a setting is missing; the app logs these once it exists.
  if (err instanceof ConfigError) for (const warning of misspeltSettings(process.env)) console.error(warning)
  process.exit(1)
}

const server = app
// A stray rejected promise is logged, not a reason to drop every open connection: the gateway
// keeps serving (uncaught exceptions still close it, as the process state is unknown then).
process.on('unhandledRejection', err => { server.log.error({ err }, 'unhandled rejection') })
closeWithGrace({ delay: 10_000, skip: ['unhandledRejection'] }, async ({ signal, err }) => {
  if (err !== undefined) server.log.error({ err }, 'closing after an error')
  else server.log.info({ signal }, 'shutting down')
  await server.close()
})
