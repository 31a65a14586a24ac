package models

// SetNicknameIndexMax lowers the bound under which a nickname prefix is
// counted exactly, so that a small test tenant reaches the plans of common
// prefixes; the returned function restores it.
func SetNicknameIndexMax(n int64) (restore func()) {
	old := nicknameIndexMax
	nicknameIndexMax = n
	return func() { nicknameIndexMax = old }
}
