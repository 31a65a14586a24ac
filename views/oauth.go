package views

// OAuthPageView is what a visitor of a tenant's H5 page sees when the web
// OAuth trip cannot end on the tenant's page: a snapshot-page visit, a link
// that expired, a refused return URL, a declined consent.
type OAuthPageView struct {
	Status  int
	Reason  string // snapshot, state, code, denied, return, scope, wechat, done
	Title   string // message key
	Message string // message key
	Back    string // the tenant's page to go back to; "" when there is none
}

// OAuthSettingsView is an app's web OAuth settings page: the URLs to give
// the tenant's H5 developers and the hosts visitors may be sent back to.
type OAuthSettingsView struct {
	AppID       int64
	AppName     string
	WeChatAppID string
	StartURL    string
	RedirectURI string
	OAuthDomain string // the host to register as 网页授权域名
	OwnHost     string // OneID's own host, always allowed
	Hosts       string // one per line, as typed
	Error       string // message key
	BadHost     string
	Saved       bool
	CanManage   bool
}
