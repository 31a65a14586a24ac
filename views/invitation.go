package views

// How the person opening an invitation link accepts it.
const (
	AcceptAsNewPerson = "new"     // no account has the email: choose a name and password
	AcceptBySigningIn = "sign_in" // an account has the email: type its password
	AcceptAsSignedIn  = "join"    // signed in with the invited email: one click
	AcceptWrongPerson = "wrong"   // signed in as someone else: sign out first
)

// AcceptView is the page an invitation link opens.
type AcceptView struct {
	Token      string
	Workspace  string
	Role       string
	Email      string
	Mode       string
	SignedInAs string
	Name       string
	Errors     FieldErrors
	// Problem is a message key shown above the form (a wrong password).
	Problem string
}
