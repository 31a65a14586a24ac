package views

// ErrorView is the page of a refused or failed request.
type ErrorView struct {
	Status    int
	Title     string // message key
	Message   string // message key
	RequestID string // shown for server errors, so support can find the log line
	// Home is where the "back" link leads.
	Home string
}
