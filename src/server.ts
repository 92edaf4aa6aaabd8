import 'dotenv/config'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError } from './config/config-error.js'

// Process entry: listen, and on SIGTERM/SIGINT let in-flight requests finish, end SSE streams
// and quit Redis before exiting.
let app
try {
  app = await buildApp({ env: process.env })
  await app.listen({ host: app.config.env.HOST, port: app.config.env.PORT })
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `Start-up failed: ${(err as Error).message}`)
  process.exit(1)
}

const server = app
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) server.log.error({ err }, 'closing after an error')
  else server.log.info({ signal }, 'shutting down')
  await server.close()
})
