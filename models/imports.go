package models

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Audit actions of CSV imports.
const (
	AuditImportDone     = "identities_imported"       // a file was written (inline, or its job ended)
	AuditImportRejected = "identities_import_refused" // a file failed validation; nothing was written
)

// ImportChunk is a slice of a queued import's validated rows.
type ImportChunk struct {
	ID        int64 `gorm:"primaryKey"`
	TenantID  int64
	JobID     int64
	Seq       int
	RowsCount int
	Data      []byte
	CreatedAt time.Time
}

// SaveImportChunks stores a queued import's rows, in order. Call it in the
// transaction that enqueues the job, so the runner never sees the job without
// its rows.
func SaveImportChunks(db *gorm.DB, tenantID, jobID int64, chunks [][]byte, rows []int, now time.Time) error {
	for i, data := range chunks {
		c := ImportChunk{TenantID: tenantID, JobID: jobID, Seq: i, RowsCount: rows[i], Data: data, CreatedAt: dbTime(now)}
		if err := db.Create(&c).Error; err != nil {
			return fmt.Errorf("models: save import chunk %d of job %d: %w", i, jobID, err)
		}
	}
	return nil
}

// LoadImportChunk reads one chunk of a queued import; ErrNotFound past the last.
func LoadImportChunk(db *gorm.DB, tenantID, jobID int64, seq int) (*ImportChunk, error) {
	var c ImportChunk
	if err := db.Scopes(ForTenant(tenantID)).Where("job_id = ? AND seq = ?", jobID, seq).Take(&c).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// DeleteImportChunks drops a finished import's rows.
func DeleteImportChunks(db *gorm.DB, tenantID, jobID int64) error {
	if err := db.Scopes(ForTenant(tenantID)).Where("job_id = ?", jobID).Delete(&ImportChunk{}).Error; err != nil {
		return fmt.Errorf("models: delete import chunks of job %d: %w", jobID, err)
	}
	return nil
}
