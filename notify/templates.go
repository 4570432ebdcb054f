package notify

import (
	"fmt"
	"strings"
	"text/template"
	"unicode"
)

// Kind is a kind of message.
type Kind string

// The messages Onsite sends.
const (
	KindOffer         Kind = "offer"          // to a technician: a job, reply YES or NO
	KindAssigned      Kind = "assigned"       // to the customer: who comes and when
	KindEnRoute       Kind = "en_route"       // to the customer
	KindArrived       Kind = "arrived"        // to the customer
	KindCompleted     Kind = "completed"      // to the customer, with a rating prompt
	KindCancelled     Kind = "cancelled"      // to the customer
	KindUnfulfilled   Kind = "unfulfilled"    // to the customer: an apology and the options left
	KindReminder      Kind = "reminder"       // to the customer before a time window
	KindReminderTech  Kind = "reminder_tech"  // to the technician before a time window
	KindReplyAccepted Kind = "reply_accepted" // SMS answer: the job is yours
	KindReplyDeclined Kind = "reply_declined" // SMS answer: declined
	KindReplyTooLate  Kind = "reply_too_late" // SMS answer: the offer is gone
	KindReplyHelp     Kind = "reply_help"     // SMS answer: how to answer
	KindReplyNoOffer  Kind = "reply_no_offer" // SMS answer: nothing to answer
	KindOTP           Kind = "otp"            // a sign-in code
	KindConfirm       Kind = "confirm"        // to a device's owner: confirm the request it opened
)

// Data fills a template. Unused fields stay empty.
type Data struct {
	Skill      string
	DistanceKm string
	EtaMinutes int
	ETA        string // a clock time, 15:40
	ExpiresAt  string // a clock time
	Technician string // first name
	Address    string
	Link       string
	Window     string // "14:00–16:00"
	Code       string
	Reason     string
}

// Locales Onsite writes in; anything else falls back to English.
var Locales = []string{"en", "de", "fr", "it"}

var texts = map[Kind]map[string]string{
	KindOffer: {
		"en": "Onsite job: {{.Skill}}, {{.DistanceKm}} km away, about {{.EtaMinutes}} min. {{.Address}} Reply YES to accept or NO to decline (until {{.ExpiresAt}}).",
		"de": "Onsite-Auftrag: {{.Skill}}, {{.DistanceKm}} km entfernt, ca. {{.EtaMinutes}} Min. {{.Address}} Antworte JA zum Annehmen oder NEIN zum Ablehnen (bis {{.ExpiresAt}}).",
		"fr": "Mission Onsite : {{.Skill}}, à {{.DistanceKm}} km, environ {{.EtaMinutes}} min. {{.Address}} Répondez OUI pour accepter ou NON pour refuser (jusqu'à {{.ExpiresAt}}).",
		"it": "Lavoro Onsite: {{.Skill}}, a {{.DistanceKm}} km, circa {{.EtaMinutes}} min. {{.Address}} Rispondi SI per accettare o NO per rifiutare (entro le {{.ExpiresAt}}).",
	},
	KindAssigned: {
		"en": "{{.Technician}} is on the way for your {{.Skill}} request, arriving around {{.ETA}}.{{if .Link}} Follow live: {{.Link}}{{end}}",
		"de": "{{.Technician}} kommt für Ihren Auftrag {{.Skill}}, Ankunft gegen {{.ETA}}.{{if .Link}} Live verfolgen: {{.Link}}{{end}}",
		"fr": "{{.Technician}} s'occupe de votre demande {{.Skill}}, arrivée vers {{.ETA}}.{{if .Link}} Suivi en direct : {{.Link}}{{end}}",
		"it": "{{.Technician}} si occupa della tua richiesta {{.Skill}}, arrivo verso le {{.ETA}}.{{if .Link}} Segui dal vivo: {{.Link}}{{end}}",
	},
	KindEnRoute: {
		"en": "{{.Technician}} has set off and should arrive around {{.ETA}}.",
		"de": "{{.Technician}} ist unterwegs und sollte gegen {{.ETA}} eintreffen.",
		"fr": "{{.Technician}} est en route et devrait arriver vers {{.ETA}}.",
		"it": "{{.Technician}} è partito e dovrebbe arrivare verso le {{.ETA}}.",
	},
	KindArrived: {
		"en": "{{.Technician}} has arrived.",
		"de": "{{.Technician}} ist eingetroffen.",
		"fr": "{{.Technician}} est arrivé.",
		"it": "{{.Technician}} è arrivato.",
	},
	KindCompleted: {
		"en": "Your {{.Skill}} job is done. How did it go? Rate {{.Technician}} in the app{{if .Link}}: {{.Link}}{{end}}.",
		"de": "Ihr Auftrag {{.Skill}} ist erledigt. Wie war es? Bewerten Sie {{.Technician}} in der App{{if .Link}}: {{.Link}}{{end}}.",
		"fr": "Votre demande {{.Skill}} est terminée. Comment cela s'est-il passé ? Notez {{.Technician}} dans l'app{{if .Link}} : {{.Link}}{{end}}.",
		"it": "La tua richiesta {{.Skill}} è completata. Com'è andata? Valuta {{.Technician}} nell'app{{if .Link}}: {{.Link}}{{end}}.",
	},
	KindCancelled: {
		"en": "Your {{.Skill}} request was cancelled{{if .Reason}} ({{.Reason}}){{end}}.",
		"de": "Ihr Auftrag {{.Skill}} wurde storniert{{if .Reason}} ({{.Reason}}){{end}}.",
		"fr": "Votre demande {{.Skill}} a été annulée{{if .Reason}} ({{.Reason}}){{end}}.",
		"it": "La tua richiesta {{.Skill}} è stata annullata{{if .Reason}} ({{.Reason}}){{end}}.",
	},
	KindUnfulfilled: {
		"en": "We are sorry: nobody could take your {{.Skill}} request in time. You can book a time window in the app, or reply to keep us searching.",
		"de": "Es tut uns leid: Niemand konnte Ihren Auftrag {{.Skill}} rechtzeitig übernehmen. Buchen Sie in der App ein Zeitfenster oder antworten Sie, damit wir weitersuchen.",
		"fr": "Nous sommes désolés : personne n'a pu prendre votre demande {{.Skill}} à temps. Réservez un créneau dans l'app, ou répondez pour que nous continuions à chercher.",
		"it": "Ci dispiace: nessuno ha potuto prendere in tempo la tua richiesta {{.Skill}}. Prenota una fascia oraria nell'app o rispondi per continuare la ricerca.",
	},
	KindReminder: {
		"en": "Reminder: {{.Technician}} comes for your {{.Skill}} appointment, {{.Window}}.",
		"de": "Erinnerung: {{.Technician}} kommt zu Ihrem Termin {{.Skill}}, {{.Window}}.",
		"fr": "Rappel : {{.Technician}} vient pour votre rendez-vous {{.Skill}}, {{.Window}}.",
		"it": "Promemoria: {{.Technician}} viene per il tuo appuntamento {{.Skill}}, {{.Window}}.",
	},
	KindReminderTech: {
		"en": "Reminder: {{.Skill}} at {{.Address}}, {{.Window}}.",
		"de": "Erinnerung: {{.Skill}} bei {{.Address}}, {{.Window}}.",
		"fr": "Rappel : {{.Skill}} à {{.Address}}, {{.Window}}.",
		"it": "Promemoria: {{.Skill}} a {{.Address}}, {{.Window}}.",
	},
	KindReplyAccepted: {
		"en": "The job is yours: {{.Skill}}, {{.Address}}. Open the app to set off.",
		"de": "Der Auftrag gehört dir: {{.Skill}}, {{.Address}}. Öffne die App, um loszufahren.",
		"fr": "La mission est à vous : {{.Skill}}, {{.Address}}. Ouvrez l'app pour partir.",
		"it": "Il lavoro è tuo: {{.Skill}}, {{.Address}}. Apri l'app per partire.",
	},
	KindReplyDeclined: {
		"en": "Declined. Thanks for answering.",
		"de": "Abgelehnt. Danke für die Antwort.",
		"fr": "Refusé. Merci d'avoir répondu.",
		"it": "Rifiutato. Grazie per la risposta.",
	},
	KindReplyTooLate: {
		"en": "Sorry, this job is no longer available ({{.Reason}}).",
		"de": "Leider ist dieser Auftrag nicht mehr verfügbar ({{.Reason}}).",
		"fr": "Désolé, cette mission n'est plus disponible ({{.Reason}}).",
		"it": "Spiacenti, questo lavoro non è più disponibile ({{.Reason}}).",
	},
	KindReplyHelp: {
		"en": "Reply YES to accept your newest Onsite offer or NO to decline it.",
		"de": "Antworte JA, um dein neuestes Onsite-Angebot anzunehmen, oder NEIN, um es abzulehnen.",
		"fr": "Répondez OUI pour accepter votre dernière offre Onsite ou NON pour la refuser.",
		"it": "Rispondi SI per accettare la tua ultima offerta Onsite o NO per rifiutarla.",
	},
	KindReplyNoOffer: {
		"en": "You have no open Onsite offer right now.",
		"de": "Du hast gerade kein offenes Onsite-Angebot.",
		"fr": "Vous n'avez pas d'offre Onsite en cours.",
		"it": "Non hai offerte Onsite aperte in questo momento.",
	},
	KindConfirm: {
		"en": "Your device {{.Reason}} reported a problem that needs {{.Skill}}. Send a technician? Confirm: {{.Link}}",
		"de": "Ihr Gerät {{.Reason}} meldet ein Problem, das {{.Skill}} braucht. Techniker schicken? Bestätigen: {{.Link}}",
		"fr": "Votre appareil {{.Reason}} signale un problème qui demande {{.Skill}}. Envoyer un technicien ? Confirmer : {{.Link}}",
		"it": "Il tuo dispositivo {{.Reason}} segnala un problema che richiede {{.Skill}}. Inviare un tecnico? Conferma: {{.Link}}",
	},
	KindOTP: {
		"en": "Your Onsite code is {{.Code}}. It expires in 5 minutes.",
		"de": "Ihr Onsite-Code lautet {{.Code}}. Er läuft in 5 Minuten ab.",
		"fr": "Votre code Onsite est {{.Code}}. Il expire dans 5 minutes.",
		"it": "Il tuo codice Onsite è {{.Code}}. Scade tra 5 minuti.",
	},
}

var templates = func() map[Kind]map[string]*template.Template {
	out := map[Kind]map[string]*template.Template{}
	for kind, byLocale := range texts {
		out[kind] = map[string]*template.Template{}
		for loc, text := range byLocale {
			out[kind][loc] = template.Must(template.New(string(kind) + "." + loc).Option("missingkey=error").Parse(text))
		}
	}
	return out
}()

// Render writes a message in the recipient's locale (English when the
// locale is not one Onsite writes in).
func Render(kind Kind, locale string, d Data) (string, error) {
	byLocale, ok := templates[kind]
	if !ok {
		return "", fmt.Errorf("no template for %s", kind)
	}
	t, ok := byLocale[locale]
	if !ok {
		t = byLocale["en"]
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render %s/%s: %w", kind, locale, err)
	}
	return strings.Join(strings.Fields(b.String()), " "), nil
}

// Reply is what a technician's SMS answer means.
type Reply int

// Replies.
const (
	ReplyUnknown Reply = iota
	ReplyYes
	ReplyNo
)

var replyWords = map[string]Reply{
	"yes": ReplyYes, "y": ReplyYes, "ok": ReplyYes, "ja": ReplyYes, "j": ReplyYes, "oui": ReplyYes, "o": ReplyYes, "si": ReplyYes, "sì": ReplyYes, "s": ReplyYes,
	"no": ReplyNo, "n": ReplyNo, "nein": ReplyNo, "non": ReplyNo,
}

// ParseReply reads YES/NO in English, German, French and Italian, ignoring
// case, spaces and punctuation around the word.
func ParseReply(body string) Reply {
	w := strings.ToLower(strings.TrimFunc(body, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) }))
	return replyWords[w]
}
