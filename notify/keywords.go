package notify

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"gorm.io/gorm/clause"
)

// Keyword is a reply that carriers expect every sender to honour, whoever
// sends it.
type Keyword int

// Keywords.
const (
	KeywordNone  Keyword = iota
	KeywordStop          // send this phone nothing more
	KeywordStart         // texts are welcome again
	KeywordHelp          // who is texting, and how to stop it
)

var keywords = map[string]Keyword{
	"stop": KeywordStop, "stopall": KeywordStop, "unsubscribe": KeywordStop, "cancel": KeywordStop, "end": KeywordStop, "quit": KeywordStop,
	"stopp": KeywordStop, "arret": KeywordStop, "arrêt": KeywordStop, "basta": KeywordStop,
	"start": KeywordStart, "unstop": KeywordStart,
	"help": KeywordHelp, "info": KeywordHelp, "hilfe": KeywordHelp, "aide": KeywordHelp, "aiuto": KeywordHelp,
}

// ParseKeyword reads STOP, START and HELP (and their usual synonyms in the
// four languages), ignoring case, spaces and punctuation around the word.
func ParseKeyword(body string) Keyword {
	w := strings.ToLower(strings.TrimFunc(body, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) }))
	return keywords[w]
}

// optOut is a row of sms_optouts.
type optOut struct {
	Phone      string `gorm:"primaryKey"`
	OptedOutAt time.Time
}

func (optOut) TableName() string { return "sms_optouts" }

// OptOut records that phone replied STOP: the guards withhold every text to
// it from now on (WithheldOptedOut), until OptIn.
func (n *Notifier) OptOut(ctx context.Context, phone string) error {
	row := optOut{Phone: phone, OptedOutAt: n.now()}
	if err := n.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return fmt.Errorf("opt %s out of texts: %w", phone, err)
	}
	return nil
}

// OptIn records that phone replied START.
func (n *Notifier) OptIn(ctx context.Context, phone string) error {
	if err := n.db.WithContext(ctx).Where("phone = ?", phone).Delete(&optOut{}).Error; err != nil {
		return fmt.Errorf("opt %s in to texts: %w", phone, err)
	}
	return nil
}

// optedOut reports whether phone replied STOP (and not START since).
func (n *Notifier) optedOut(ctx context.Context, phone string) (bool, error) {
	var count int64
	if err := n.db.WithContext(ctx).Model(&optOut{}).Where("phone = ?", phone).Count(&count).Error; err != nil {
		return false, fmt.Errorf("check whether %s opted out: %w", phone, err)
	}
	return count > 0, nil
}

// inboundSMS is a row of inbound_sms: an SMS webhook already handled.
type inboundSMS struct {
	SID        string `gorm:"column:sid;primaryKey"`
	ReceivedAt time.Time
}

func (inboundSMS) TableName() string { return "inbound_sms" }

// inboundKept is how long a handled SMS is remembered against replays.
const inboundKept = 24 * time.Hour

// FirstInbound records the MessageSid of an inbound SMS and reports whether
// it is the first time Onsite sees it: a signed webhook replayed (captured,
// or resent by Twilio) must change nothing the second time.
func (n *Notifier) FirstInbound(ctx context.Context, sid string) (bool, error) {
	res := n.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&inboundSMS{SID: sid, ReceivedAt: n.now()})
	if res.Error != nil {
		return false, fmt.Errorf("record inbound sms %s: %w", sid, res.Error)
	}
	return res.RowsAffected == 1, nil
}
