import t from 'tap'
import { type ConsentPageInput, renderConsentPage, renderErrorPage } from '../../src/oauth/consent-page.js'

const base: ConsentPageInput = {
  clientId: 'Qm9vdHN0cmFwQ2xpZW50',
  clientName: 'Claude',
  redirectUri: 'https://claude.ai/api/mcp/auth_callback',
  resourceUrl: 'https://gw.example.com/calc/mcp',
  scopes: ['mcp:tools'],
  action: '/oauth/consent',
  csrfToken: 'csrf-abc',
  transactionId: 'tx-123',
  nonce: 'n0nce'
}

t.test('shows who asks, for what, and where access goes', async t => {
  const html = renderConsentPage(base)
  t.match(html, /<title>Allow Claude\?<\/title>/)
  t.match(html, /<strong>Claude<\/strong> wants to use <strong>https:\/\/gw\.example\.com\/calc\/mcp<\/strong>/)
  t.match(html, /<code>mcp:tools<\/code>/)
  t.match(html, /Access will be sent to<\/dt>\n<dd><code>claude\.ai<\/code>/)
  t.match(html, /has not verified it/, 'a self-declared name is flagged as such')
  t.notMatch(html, /class="warning"/, 'no localhost warning for an https redirect')
  t.match(html, /<form method="post" action="\/oauth\/consent">/)
  t.match(html, /<input type="hidden" name="csrf_token" value="csrf-abc">/)
  t.match(html, /<input type="hidden" name="transaction_id" value="tx-123">/)
  t.match(html, /<button type="submit" name="decision" value="approve">Approve<\/button>/)
  t.match(html, /<button type="submit" name="decision" value="deny">Deny<\/button>/)
})

t.test('works under a strict CSP: no script, nonce on the only style', async t => {
  const html = renderConsentPage(base)
  t.notMatch(html, /<script/i)
  t.notMatch(html, / on[a-z]+=/i, 'no inline event handlers')
  t.notMatch(html, / style=/i, 'no style attributes (they would need unsafe-inline)')
  t.equal(html.match(/<style/g)?.length, 1)
  t.match(html, /<style nonce="n0nce">/)
})

t.test('every interpolated value is escaped', async t => {
  const hostile = '<script>alert("x")</script>'
  const html = renderConsentPage({
    ...base,
    clientName: hostile,
    resourceUrl: 'https://gw.example.com/"><img src=x>',
    scopes: ['<b>scope</b>'],
    csrfToken: '"><script>',
    transactionId: "'onmouseover='x",
    nonce: '"><script>',
    action: '/oauth/consent"><script>'
  })
  t.notMatch(html, /<script/i, 'no script element anywhere')
  t.notMatch(html, /<img/)
  t.notMatch(html, /<b>/)
  t.match(html, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/)
  t.match(html, /value="&#39;onmouseover=&#39;x"/)
})

t.test('a localhost redirect gets a visible warning; an app scheme shows the scheme', async t => {
  const local = renderConsentPage({ ...base, redirectUri: 'http://127.0.0.1:33418/callback' })
  t.match(local, /class="warning".*Only approve if you just started this/s)
  t.match(local, /<code>127\.0\.0\.1:33418<\/code>/)
  const app = renderConsentPage({ ...base, redirectUri: 'cursor://anysphere.cursor-retrieval/oauth/callback' })
  t.match(app, /<code>cursor:\/\/anysphere\.cursor-retrieval<\/code>/)
  t.notMatch(app, /class="warning"/)
})

t.test('a metadata-document client shows the domain that describes it', async t => {
  const html = renderConsentPage({ ...base, clientId: 'https://app.example.com/oauth/client.json', clientName: undefined })
  t.match(html, /<h1>Allow https:\/\/app\.example\.com\/oauth\/client\.json\?<\/h1>/, 'no name: the id is shown')
  t.match(html, /described at <code>app\.example\.com<\/code>/)
  t.notMatch(html, /has not verified/)
})

t.test('step-up asks only for the new scopes', async t => {
  const html = renderConsentPage({ ...base, scopes: ['mcp:resources'], grantedScopes: ['mcp:tools'] })
  t.match(html, /Allow more access for Claude\?/)
  t.match(html, /New permissions requested<\/dt>\n<dd><code>mcp:resources<\/code><\/dd>\n<dt>Already allowed<\/dt>\n<dd><code>mcp:tools<\/code><\/dd>/)
  const first = renderConsentPage(base)
  t.notMatch(first, /Already allowed/)
})

t.test('error page', async t => {
  const html = renderErrorPage('Unknown application', 'client <b>"x"</b> is not registered', 'abc')
  t.match(html, /<title>Unknown application<\/title>/)
  t.match(html, /<h1>Unknown application<\/h1>/)
  t.match(html, /<p>client &lt;b&gt;&quot;x&quot;&lt;\/b&gt; is not registered<\/p>/)
  t.match(html, /<style nonce="abc">/)
  t.notMatch(html, /<form/, 'nothing to submit, nowhere to be sent')
})
