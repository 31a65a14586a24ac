package models

// SetNicknameIndexMax lowers the bound under which a nickname prefix is
// counted exactly, so that a small test tenant reaches the plans of common
// prefixes; the returned function restores it.
func SetNicknameIndexMax(n int64) (restore func()) {
	old := nicknameIndexMax
	nicknameIndexMax = n
	return func() { nicknameIndexMax = old }
}

// SourceBit is the source's bit in a customer's src_mask (0 for none).
func SourceBit(source string) int64 { return sourceBits[source] }
