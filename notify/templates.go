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
	KindOffer         Kind = "offer"              // to a technician: a job, reply YES or NO
	KindAssigned      Kind = "assigned"           // to the customer: who comes and when
	KindEnRoute       Kind = "en_route"           // to the customer
	KindArrived       Kind = "arrived"            // to the customer
	KindCompleted     Kind = "completed"          // to the customer, with a rating prompt
	KindCancelled     Kind = "cancelled"          // to the customer
	KindChanged       Kind = "technician_changed" // to the customer: another technician comes
	KindSearching     Kind = "searching_again"    // to the customer: the technician cannot come, we look for another
	KindLate          Kind = "running_late"       // to the customer: the arrival slipped, a new ETA
	KindStill         Kind = "still_searching"    // to the customer: a request at risk, an honest new estimate
	KindTaken         Kind = "request_taken"      // to a caller whose request ops took on the phone: the tracking link
	KindNotHome       Kind = "not_home"           // to the customer: the technician is at the door and waits
	KindNoShow        Kind = "no_show"            // to the customer: nobody came to the door, the visit is closed
	KindRescheduled   Kind = "rescheduled"        // to the customer: the new window
	KindCustomerHome  Kind = "customer_home"      // to the technician: the customer is coming to the door
	KindConfirmGone   Kind = "confirm_expired"    // to a device's owner: the request was not confirmed in time
	KindJobGiven      Kind = "job_assigned"       // to a technician: dispatch gave them a job
	KindJobTaken      Kind = "job_unassigned"     // to a technician: dispatch took a job off them
	KindJobCancelled  Kind = "job_cancelled"      // to a technician: their job was cancelled
	KindOffDuty       Kind = "off_duty"           // to a technician: Onsite took them off duty, and why
	KindSuspended     Kind = "suspended"          // to a technician: ops suspended them
	KindUnfulfilled   Kind = "unfulfilled"        // to the customer: an apology and the options left
	KindReminder      Kind = "reminder"           // to the customer before a time window
	KindReminderTech  Kind = "reminder_tech"      // to the technician before a time window
	KindReplyAccepted Kind = "reply_accepted"     // SMS answer: the job is yours
	KindReplyDeclined Kind = "reply_declined"     // SMS answer: declined
	KindReplyTooLate  Kind = "reply_too_late"     // SMS answer: the offer is gone
	KindReplyHelp     Kind = "reply_help"         // SMS answer: how to answer
	KindReplyNoOffer  Kind = "reply_no_offer"     // SMS answer: nothing to answer
	KindOptedOut      Kind = "opted_out"          // SMS answer to STOP
	KindOptedIn       Kind = "opted_in"           // SMS answer to START
	KindInfo          Kind = "info"               // SMS answer to HELP
	KindNoReplies     Kind = "no_replies"         // SMS answer to anyone but a technician: this number reads no replies
	KindOTP           Kind = "otp"                // a sign-in code
	KindContactCode   Kind = "contact_code"       // a code that proves a contact phone may be texted
	KindConfirm       Kind = "confirm"            // to a device's owner: confirm the request it opened
)

// Data fills a template. Unused fields stay empty. Nothing in it is written
// by a caller: no address, note or reason typed by a customer or a device
// reaches a text (see Reason).
type Data struct {
	Skill      string
	DistanceKm string
	EtaMinutes int
	ETA        string // a clock time, 15:40
	ExpiresAt  string // a clock time
	Technician string // first name
	Previous   string // first name of the technician who no longer comes
	Unresolved bool   // a job closed without a fix (not_fixed, needs_parts)
	Link       string
	WindowFrom string // a windowed request: its window's start, a clock time (empty for ASAP)
	WindowTo   string // and its end (dated when it ends on another day)
	Day        string // the window's date when it is not on the day of the text ("Sat 5 Dec"), else empty
	Code       string
	Reason     Reason
}

// Reason is why something happened, from a fixed list: Render writes it in
// the recipient's language, so no free text (a cancellation reason a caller
// typed) can ride along in a text.
type Reason string

// The reasons a text may give.
const (
	ReasonNone                Reason = ""
	ReasonCancelledByCustomer Reason = "cancelled_by_customer"
	ReasonCancelledByOps      Reason = "cancelled_by_ops"
	ReasonCancelledByDevice   Reason = "cancelled_by_device"
	ReasonOfferTaken          Reason = "offer_taken"
	ReasonOfferWithdrawn      Reason = "offer_withdrawn"
	ReasonOfferExpired        Reason = "offer_expired"
	ReasonOfferDeclined       Reason = "offer_declined"
	ReasonOfferAccepted       Reason = "offer_already_accepted"
	ReasonNotEligible         Reason = "not_eligible" // the rules refuse the technician now (dispatch.ReasonNotEligible)
	// Why a technician's job ended, told to the technician.
	ReasonJobCustomerCancelled Reason = "job_cancelled_by_customer"
	ReasonJobOpsCancelled      Reason = "job_cancelled_by_ops"
	ReasonJobDeviceCancelled   Reason = "job_cancelled_by_device"
	ReasonJobReassigned        Reason = "job_reassigned"   // given to another technician
	ReasonJobRedispatched      Reason = "job_redispatched" // searched for again
	ReasonJobRescheduled       Reason = "job_rescheduled"  // the customer booked another time
	// Why Onsite took a technician off duty (technicians.Duty*).
	ReasonShiftEnded Reason = "shift_ended"
	ReasonNoPosition Reason = "no_position"
)

// reasonTexts are the reasons in each language.
var reasonTexts = map[Reason]map[string]string{
	ReasonCancelledByCustomer: {"en": "as you asked", "de": "auf Ihren Wunsch", "fr": "à votre demande", "it": "su tua richiesta"},
	ReasonCancelledByOps:      {"en": "by our dispatch team", "de": "durch unsere Disposition", "fr": "par notre équipe de répartition", "it": "dalla nostra centrale operativa"},
	ReasonCancelledByDevice:   {"en": "by your device", "de": "von Ihrem Gerät", "fr": "par votre appareil", "it": "dal tuo dispositivo"},
	ReasonOfferTaken:          {"en": "someone else took it", "de": "jemand anderes hat ihn übernommen", "fr": "quelqu'un d'autre l'a prise", "it": "qualcun altro l'ha preso"},
	ReasonOfferWithdrawn:      {"en": "the offer was withdrawn", "de": "das Angebot wurde zurückgezogen", "fr": "l'offre a été retirée", "it": "l'offerta è stata ritirata"},
	ReasonOfferExpired:        {"en": "the offer expired", "de": "das Angebot ist abgelaufen", "fr": "l'offre a expiré", "it": "l'offerta è scaduta"},
	ReasonOfferDeclined:       {"en": "you declined it", "de": "du hast ihn abgelehnt", "fr": "vous l'avez refusée", "it": "l'hai rifiutato"},
	ReasonOfferAccepted:       {"en": "you already accepted it", "de": "du hast ihn schon angenommen", "fr": "vous l'avez déjà acceptée", "it": "l'hai già accettato"},
	ReasonNotEligible: {"en": "you cannot take it right now: check your certifications, shift and duty in the app",
		"de": "du kannst ihn gerade nicht übernehmen: prüfe Zertifikate, Schicht und Dienststatus in der App",
		"fr": "vous ne pouvez pas la prendre pour l'instant : vérifiez vos certifications, votre horaire et votre statut dans l'app",
		"it": "non puoi prenderlo ora: controlla certificazioni, turno e stato di servizio nell'app"},
	ReasonJobCustomerCancelled: {"en": "the customer cancelled", "de": "die Kundschaft hat storniert", "fr": "le client a annulé", "it": "il cliente ha annullato"},
	ReasonJobOpsCancelled:      {"en": "dispatch cancelled it", "de": "die Disposition hat storniert", "fr": "la répartition l'a annulée", "it": "la centrale l'ha annullato"},
	ReasonJobDeviceCancelled:   {"en": "the customer's device cancelled it", "de": "das Gerät der Kundschaft hat storniert", "fr": "l'appareil du client l'a annulée", "it": "il dispositivo del cliente l'ha annullato"},
	ReasonJobReassigned:        {"en": "it goes to another technician", "de": "er geht an eine andere Fachperson", "fr": "elle est confiée à quelqu'un d'autre", "it": "passa a qualcun altro"},
	ReasonJobRedispatched:      {"en": "it is being dispatched again", "de": "er wird neu vergeben", "fr": "elle est réattribuée", "it": "viene riassegnato"},
	ReasonJobRescheduled:       {"en": "the customer booked another time", "de": "die Kundschaft hat einen anderen Termin gebucht", "fr": "le client a réservé un autre créneau", "it": "il cliente ha prenotato un altro orario"},
	ReasonShiftEnded:           {"en": "your shift has ended", "de": "deine Schicht ist zu Ende", "fr": "votre horaire est terminé", "it": "il tuo turno è finito"},
	ReasonNoPosition:           {"en": "your app has not sent a position for a while", "de": "deine App hat länger keine Position gesendet", "fr": "votre app n'envoie plus de position depuis un moment", "it": "la tua app non invia la posizione da un po'"},
}

// ReasonOf turns a conflict's machine-readable reason (errs.Error.Reason)
// into a Reason a text may give, or ReasonNone.
func ReasonOf(code string) Reason {
	if _, ok := reasonTexts[Reason(code)]; ok {
		return Reason(code)
	}
	return ReasonNone
}

// Locales Onsite writes in; anything else falls back to English.
var Locales = []string{"en", "de", "fr", "it"}

var texts = map[Kind]map[string]string{
	KindOffer: {
		"en": "Onsite job: {{.Skill}}{{if .WindowFrom}} {{if .Day}}on {{.Day}} {{end}}between {{.WindowFrom}} and {{.WindowTo}}, {{.DistanceKm}} km away{{else}}, {{.DistanceKm}} km away, about {{.EtaMinutes}} min{{end}}; the address is in the app. Reply YES to accept or NO to decline (until {{.ExpiresAt}}).",
		"de": "Onsite-Auftrag: {{.Skill}}{{if .WindowFrom}} {{if .Day}}am {{.Day}} {{end}}zwischen {{.WindowFrom}} und {{.WindowTo}}, {{.DistanceKm}} km entfernt{{else}}, {{.DistanceKm}} km entfernt, ca. {{.EtaMinutes}} Min.{{end}}; die Adresse steht in der App. Antworte JA zum Annehmen oder NEIN zum Ablehnen (bis {{.ExpiresAt}}).",
		"fr": "Mission Onsite : {{.Skill}}{{if .WindowFrom}} {{if .Day}}le {{.Day}} {{end}}entre {{.WindowFrom}} et {{.WindowTo}}, à {{.DistanceKm}} km{{else}}, à {{.DistanceKm}} km, environ {{.EtaMinutes}} min{{end}} ; l'adresse est dans l'app. Répondez OUI pour accepter ou NON pour refuser (jusqu'à {{.ExpiresAt}}).",
		"it": "Lavoro Onsite: {{.Skill}}{{if .WindowFrom}} {{if .Day}}{{.Day}} {{end}}tra le {{.WindowFrom}} e le {{.WindowTo}}, a {{.DistanceKm}} km{{else}}, a {{.DistanceKm}} km, circa {{.EtaMinutes}} min{{end}}; l'indirizzo è nell'app. Rispondi SI per accettare o NO per rifiutare (entro le {{.ExpiresAt}}).",
	},
	KindAssigned: {
		// A windowed request says its window; an ASAP one its ETA, or no time when it is unknown.
		"en": "{{if .WindowFrom}}{{.Technician}} will come for your {{.Skill}} appointment {{if .Day}}on {{.Day}} {{end}}between {{.WindowFrom}} and {{.WindowTo}}.{{else}}{{.Technician}} will take care of your {{.Skill}} request{{if .ETA}}, arriving around {{.ETA}}{{end}}.{{end}}{{if .Link}} Follow live: {{.Link}}{{end}}",
		"de": "{{if .WindowFrom}}{{.Technician}} kommt zu Ihrem Termin {{.Skill}} {{if .Day}}am {{.Day}} {{end}}zwischen {{.WindowFrom}} und {{.WindowTo}}.{{else}}{{.Technician}} kommt für Ihren Auftrag {{.Skill}}{{if .ETA}}, Ankunft gegen {{.ETA}}{{end}}.{{end}}{{if .Link}} Live verfolgen: {{.Link}}{{end}}",
		"fr": "{{if .WindowFrom}}{{.Technician}} viendra pour votre rendez-vous {{.Skill}} {{if .Day}}le {{.Day}} {{end}}entre {{.WindowFrom}} et {{.WindowTo}}.{{else}}{{.Technician}} s'occupe de votre demande {{.Skill}}{{if .ETA}}, arrivée vers {{.ETA}}{{end}}.{{end}}{{if .Link}} Suivi en direct : {{.Link}}{{end}}",
		"it": "{{if .WindowFrom}}{{.Technician}} verrà per il tuo appuntamento {{.Skill}} {{if .Day}}{{.Day}} {{end}}tra le {{.WindowFrom}} e le {{.WindowTo}}.{{else}}{{.Technician}} si occupa della tua richiesta {{.Skill}}{{if .ETA}}, arrivo verso le {{.ETA}}{{end}}.{{end}}{{if .Link}} Segui dal vivo: {{.Link}}{{end}}",
	},
	KindChanged: {
		"en": "Change of technician: {{.Technician}} comes instead of {{.Previous}}{{if .WindowFrom}} for your {{.Skill}} appointment {{if .Day}}on {{.Day}} {{end}}between {{.WindowFrom}} and {{.WindowTo}}{{else}} for your {{.Skill}} request{{if .ETA}}, arriving around {{.ETA}}{{end}}{{end}}.{{if .Link}} Follow live: {{.Link}}{{end}}",
		"de": "Wechsel der Fachperson: {{.Technician}} kommt statt {{.Previous}}{{if .WindowFrom}} zu Ihrem Termin {{.Skill}} {{if .Day}}am {{.Day}} {{end}}zwischen {{.WindowFrom}} und {{.WindowTo}}{{else}} für Ihren Auftrag {{.Skill}}{{if .ETA}}, Ankunft gegen {{.ETA}}{{end}}{{end}}.{{if .Link}} Live verfolgen: {{.Link}}{{end}}",
		"fr": "Changement : {{.Technician}} remplace {{.Previous}}{{if .WindowFrom}} pour votre rendez-vous {{.Skill}} {{if .Day}}le {{.Day}} {{end}}entre {{.WindowFrom}} et {{.WindowTo}}{{else}} pour votre demande {{.Skill}}{{if .ETA}}, arrivée vers {{.ETA}}{{end}}{{end}}.{{if .Link}} Suivi en direct : {{.Link}}{{end}}",
		"it": "Cambio: {{.Technician}} sostituisce {{.Previous}}{{if .WindowFrom}} per il tuo appuntamento {{.Skill}} {{if .Day}}{{.Day}} {{end}}tra le {{.WindowFrom}} e le {{.WindowTo}}{{else}} per la tua richiesta {{.Skill}}{{if .ETA}}, arrivo verso le {{.ETA}}{{end}}{{end}}.{{if .Link}} Segui dal vivo: {{.Link}}{{end}}",
	},
	KindSearching: {
		"en": "{{.Technician}} can no longer come for your {{.Skill}} request. We are looking for another technician and will text you who comes.",
		"de": "{{.Technician}} kann für Ihren Auftrag {{.Skill}} leider nicht mehr kommen. Wir suchen eine andere Fachperson und schreiben Ihnen, wer kommt.",
		"fr": "{{.Technician}} ne peut plus venir pour votre demande {{.Skill}}. Nous cherchons quelqu'un d'autre et vous dirons par SMS qui vient.",
		"it": "{{.Technician}} non può più venire per la tua richiesta {{.Skill}}. Stiamo cercando qualcun altro e ti scriveremo chi viene.",
	},
	KindLate: {
		"en": "Sorry, {{.Technician}} is running late{{if .ETA}} and should now arrive around {{.ETA}}{{end}}.",
		"de": "Entschuldigung, {{.Technician}} verspätet sich{{if .ETA}} und sollte nun gegen {{.ETA}} eintreffen{{end}}.",
		"fr": "Désolés, {{.Technician}} a du retard{{if .ETA}} et devrait maintenant arriver vers {{.ETA}}{{end}}.",
		"it": "Ci scusiamo, {{.Technician}} è in ritardo{{if .ETA}} e dovrebbe ora arrivare verso le {{.ETA}}{{end}}.",
	},
	KindStill: {
		"en": "We are still looking for a technician for your {{.Skill}} request.{{if .ETA}} Our honest estimate now: someone could be there around {{.ETA}}.{{else}} We cannot give a time yet.{{end}} We will text you who comes.",
		"de": "Wir suchen noch eine Fachperson für Ihren Auftrag {{.Skill}}.{{if .ETA}} Unsere ehrliche Schätzung: Jemand könnte gegen {{.ETA}} bei Ihnen sein.{{else}} Eine Zeit können wir noch nicht nennen.{{end}} Wir schreiben Ihnen, wer kommt.",
		"fr": "Nous cherchons encore quelqu'un pour votre demande {{.Skill}}.{{if .ETA}} Notre estimation honnête : quelqu'un pourrait être là vers {{.ETA}}.{{else}} Nous ne pouvons pas encore donner d'heure.{{end}} Nous vous dirons par SMS qui vient.",
		"it": "Stiamo ancora cercando qualcuno per la tua richiesta {{.Skill}}.{{if .ETA}} La nostra stima onesta: qualcuno potrebbe essere da te verso le {{.ETA}}.{{else}} Non possiamo ancora indicare un orario.{{end}} Ti scriveremo chi viene.",
	},
	KindTaken: {
		"en": "Onsite has your {{.Skill}} request{{if .WindowFrom}}, booked {{if .Day}}on {{.Day}} {{end}}between {{.WindowFrom}} and {{.WindowTo}}{{end}}. We will text you who comes. Follow it here: {{.Link}}",
		"de": "Onsite hat Ihren Auftrag {{.Skill}} aufgenommen{{if .WindowFrom}}, gebucht {{if .Day}}am {{.Day}} {{end}}zwischen {{.WindowFrom}} und {{.WindowTo}}{{end}}. Wir schreiben Ihnen, wer kommt. Hier verfolgen: {{.Link}}",
		"fr": "Onsite a bien reçu votre demande {{.Skill}}{{if .WindowFrom}}, réservée {{if .Day}}le {{.Day}} {{end}}entre {{.WindowFrom}} et {{.WindowTo}}{{end}}. Nous vous dirons par SMS qui vient. Suivi ici : {{.Link}}",
		"it": "Onsite ha ricevuto la tua richiesta {{.Skill}}{{if .WindowFrom}}, prenotata {{if .Day}}{{.Day}} {{end}}tra le {{.WindowFrom}} e le {{.WindowTo}}{{end}}. Ti scriveremo chi viene. Seguila qui: {{.Link}}",
	},
	KindNotHome: {
		"en": "{{.Technician}} is at your door for your {{.Skill}} visit and cannot reach you. {{.Technician}} waits{{if .ETA}} until {{.ETA}}{{else}} a few minutes{{end}}; after that the visit is closed. In the app you can say you are coming or book another time.",
		"de": "{{.Technician}} steht für Ihren Auftrag {{.Skill}} vor Ihrer Tür und erreicht Sie nicht. {{.Technician}} wartet{{if .ETA}} bis {{.ETA}}{{else}} einige Minuten{{end}}; danach wird der Besuch geschlossen. In der App können Sie melden, dass Sie kommen, oder einen anderen Termin buchen.",
		"fr": "{{.Technician}} est à votre porte pour votre demande {{.Skill}} et ne vous trouve pas. {{.Technician}} attend{{if .ETA}} jusqu'à {{.ETA}}{{else}} quelques minutes{{end}} ; ensuite la visite sera close. Dans l'app, vous pouvez dire que vous arrivez ou réserver un autre créneau.",
		"it": "{{.Technician}} è alla tua porta per la richiesta {{.Skill}} e non ti trova. {{.Technician}} aspetta{{if .ETA}} fino alle {{.ETA}}{{else}} qualche minuto{{end}}; poi la visita verrà chiusa. Nell'app puoi dire che arrivi o prenotare un altro orario.",
	},
	KindNoShow: {
		"en": "Nobody came to the door for your {{.Skill}} visit, so it is closed. You can book a new time in the app.",
		"de": "Bei Ihrem Besuch {{.Skill}} hat niemand die Tür geöffnet, daher ist er geschlossen. In der App können Sie einen neuen Termin buchen.",
		"fr": "Personne n'a ouvert pour votre visite {{.Skill}}, elle est donc close. Vous pouvez réserver un nouveau créneau dans l'app.",
		"it": "Nessuno ha aperto per la tua visita {{.Skill}}, quindi è chiusa. Puoi prenotare un nuovo orario nell'app.",
	},
	KindRescheduled: {
		"en": "Your {{.Skill}} visit is booked {{if .Day}}on {{.Day}} {{end}}between {{.WindowFrom}} and {{.WindowTo}}. We will text you who comes.",
		"de": "Ihr Besuch {{.Skill}} ist gebucht {{if .Day}}am {{.Day}} {{end}}zwischen {{.WindowFrom}} und {{.WindowTo}}. Wir schreiben Ihnen, wer kommt.",
		"fr": "Votre visite {{.Skill}} est réservée {{if .Day}}le {{.Day}} {{end}}entre {{.WindowFrom}} et {{.WindowTo}}. Nous vous dirons par SMS qui vient.",
		"it": "La tua visita {{.Skill}} è prenotata {{if .Day}}{{.Day}} {{end}}tra le {{.WindowFrom}} e le {{.WindowTo}}. Ti scriveremo chi viene.",
	},
	KindCustomerHome: {
		"en": "The customer of your {{.Skill}} job is coming to the door.",
		"de": "Die Kundschaft deines Auftrags {{.Skill}} kommt zur Tür.",
		"fr": "Le client de votre mission {{.Skill}} arrive à la porte.",
		"it": "Il cliente del tuo lavoro {{.Skill}} sta arrivando alla porta.",
	},
	KindConfirmGone: {
		"en": "Your device's {{.Skill}} request was not confirmed in time and is closed. If you still need help, ask again in the app.",
		"de": "Der Auftrag {{.Skill}} Ihres Geräts wurde nicht rechtzeitig bestätigt und ist geschlossen. Brauchen Sie weiter Hilfe, fragen Sie in der App erneut an.",
		"fr": "La demande {{.Skill}} de votre appareil n'a pas été confirmée à temps et est close. Si vous avez encore besoin d'aide, redemandez dans l'app.",
		"it": "La richiesta {{.Skill}} del tuo dispositivo non è stata confermata in tempo ed è chiusa. Se ti serve ancora aiuto, chiedi di nuovo nell'app.",
	},
	KindJobGiven: {
		"en": "Dispatch gave you a job: {{.Skill}}{{if .WindowFrom}} {{if .Day}}on {{.Day}} {{end}}between {{.WindowFrom}} and {{.WindowTo}}{{else}}, as soon as possible{{end}}. The address is in the app.",
		"de": "Die Disposition hat dir einen Auftrag gegeben: {{.Skill}}{{if .WindowFrom}} {{if .Day}}am {{.Day}} {{end}}zwischen {{.WindowFrom}} und {{.WindowTo}}{{else}}, so bald wie möglich{{end}}. Die Adresse steht in der App.",
		"fr": "La répartition vous a confié une mission : {{.Skill}}{{if .WindowFrom}} {{if .Day}}le {{.Day}} {{end}}entre {{.WindowFrom}} et {{.WindowTo}}{{else}}, dès que possible{{end}}. L'adresse est dans l'app.",
		"it": "La centrale ti ha assegnato un lavoro: {{.Skill}}{{if .WindowFrom}} {{if .Day}}{{.Day}} {{end}}tra le {{.WindowFrom}} e le {{.WindowTo}}{{else}}, il prima possibile{{end}}. L'indirizzo è nell'app.",
	},
	KindJobTaken: {
		"en": "Dispatch took the {{.Skill}} job{{if .WindowFrom}} {{if .Day}}on {{.Day}} {{end}}from {{.WindowFrom}}{{end}} off you{{if .Because}} ({{.Because}}){{end}}: you do not need to go.",
		"de": "Die Disposition hat dir den Auftrag {{.Skill}}{{if .WindowFrom}} {{if .Day}}am {{.Day}} {{end}}ab {{.WindowFrom}}{{end}} abgenommen{{if .Because}} ({{.Because}}){{end}}: du musst nicht hinfahren.",
		"fr": "La répartition vous a retiré la mission {{.Skill}}{{if .WindowFrom}} {{if .Day}}du {{.Day}} {{end}}à {{.WindowFrom}}{{end}}{{if .Because}} ({{.Because}}){{end}} : inutile de vous déplacer.",
		"it": "La centrale ti ha tolto il lavoro {{.Skill}}{{if .WindowFrom}} {{if .Day}}di {{.Day}} {{end}}delle {{.WindowFrom}}{{end}}{{if .Because}} ({{.Because}}){{end}}: non devi andare.",
	},
	KindJobCancelled: {
		"en": "The {{.Skill}} job{{if .WindowFrom}} {{if .Day}}on {{.Day}} {{end}}from {{.WindowFrom}}{{end}} was cancelled{{if .Because}} ({{.Because}}){{end}}: you do not need to go.",
		"de": "Der Auftrag {{.Skill}}{{if .WindowFrom}} {{if .Day}}am {{.Day}} {{end}}ab {{.WindowFrom}}{{end}} wurde storniert{{if .Because}} ({{.Because}}){{end}}: du musst nicht hinfahren.",
		"fr": "La mission {{.Skill}}{{if .WindowFrom}} {{if .Day}}du {{.Day}} {{end}}à {{.WindowFrom}}{{end}} a été annulée{{if .Because}} ({{.Because}}){{end}} : inutile de vous déplacer.",
		"it": "Il lavoro {{.Skill}}{{if .WindowFrom}} {{if .Day}}di {{.Day}} {{end}}delle {{.WindowFrom}}{{end}} è stato annullato{{if .Because}} ({{.Because}}){{end}}: non devi andare.",
	},
	KindOffDuty: {
		"en": "Onsite: you are off duty now{{if .Because}} ({{.Because}}){{end}} and get no offers. Go on duty in the app when you are ready.",
		"de": "Onsite: du bist jetzt außer Dienst{{if .Because}} ({{.Because}}){{end}} und erhältst keine Angebote. Geh in der App in den Dienst, wenn du bereit bist.",
		"fr": "Onsite : vous êtes hors service{{if .Because}} ({{.Because}}){{end}} et ne recevez plus d'offres. Reprenez le service dans l'app quand vous le souhaitez.",
		"it": "Onsite: ora sei fuori servizio{{if .Because}} ({{.Because}}){{end}} e non ricevi offerte. Torna in servizio nell'app quando vuoi.",
	},
	KindSuspended: {
		"en": "Onsite: dispatch has suspended your account. You are off duty and get no offers; please contact dispatch.",
		"de": "Onsite: Die Disposition hat dein Konto gesperrt. Du bist außer Dienst und erhältst keine Angebote; bitte melde dich bei der Disposition.",
		"fr": "Onsite : la répartition a suspendu votre compte. Vous êtes hors service et ne recevez plus d'offres ; veuillez contacter la répartition.",
		"it": "Onsite: la centrale ha sospeso il tuo account. Sei fuori servizio e non ricevi offerte; contatta la centrale.",
	},
	KindEnRoute: {
		"en": "{{.Technician}} has set off{{if .ETA}} and should arrive around {{.ETA}}{{end}}.",
		"de": "{{.Technician}} ist unterwegs{{if .ETA}} und sollte gegen {{.ETA}} eintreffen{{end}}.",
		"fr": "{{.Technician}} est en route{{if .ETA}} et devrait arriver vers {{.ETA}}{{end}}.",
		"it": "{{.Technician}} è in viaggio{{if .ETA}} e dovrebbe arrivare verso le {{.ETA}}{{end}}.",
	},
	KindArrived: {
		"en": "{{.Technician}} has arrived.",
		"de": "{{.Technician}} ist eingetroffen.",
		"fr": "{{.Technician}} est sur place.",
		"it": "{{.Technician}} è sul posto.",
	},
	KindCompleted: {
		"en": "{{if .Unresolved}}{{.Technician}} could not finish your {{.Skill}} job this visit. A follow-up visit is open: choose in the app when it suits you, as soon as possible or a time window.{{else}}Your {{.Skill}} job is done.{{end}} How did it go? Rate the visit{{if .Link}}: {{.Link}}{{else}} in the app.{{end}}",
		"de": "{{if .Unresolved}}{{.Technician}} konnte Ihren Auftrag {{.Skill}} bei diesem Besuch nicht abschließen. Ein Folgebesuch ist eröffnet: Wählen Sie in der App, wann er Ihnen passt, so bald wie möglich oder ein Zeitfenster.{{else}}Ihr Auftrag {{.Skill}} ist erledigt.{{end}} Wie war es? Bewerten Sie den Besuch{{if .Link}}: {{.Link}}{{else}} in der App.{{end}}",
		"fr": "{{if .Unresolved}}{{.Technician}} n'a pas pu terminer votre demande {{.Skill}} lors de cette visite. Une visite de suivi est ouverte : choisissez dans l'app quand elle vous convient, dès que possible ou un créneau.{{else}}Votre demande {{.Skill}} est terminée.{{end}} Comment cela s'est-il passé ? Notez la visite{{if .Link}} : {{.Link}}{{else}} dans l'app.{{end}}",
		"it": "{{if .Unresolved}}Non è stato possibile completare la tua richiesta {{.Skill}} in questa visita. È aperta una visita di follow-up: scegli nell'app quando ti va bene, il prima possibile o una fascia oraria.{{else}}La tua richiesta {{.Skill}} è completata.{{end}} Com'è andata? Valuta la visita{{if .Link}}: {{.Link}}{{else}} nell'app.{{end}}",
	},
	KindCancelled: {
		"en": "Your {{.Skill}} request was cancelled{{if .Because}} ({{.Because}}){{end}}.",
		"de": "Ihr Auftrag {{.Skill}} wurde storniert{{if .Because}} ({{.Because}}){{end}}.",
		"fr": "Votre demande {{.Skill}} a été annulée{{if .Because}} ({{.Because}}){{end}}.",
		"it": "La tua richiesta {{.Skill}} è stata annullata{{if .Because}} ({{.Because}}){{end}}.",
	},
	KindUnfulfilled: {
		"en": "We are sorry: nobody could take your {{.Skill}} request in time. You can book a time window or ask again in the app.",
		"de": "Es tut uns leid: Niemand konnte Ihren Auftrag {{.Skill}} rechtzeitig übernehmen. Sie können in der App ein Zeitfenster buchen oder erneut anfragen.",
		"fr": "Nous sommes désolés : personne n'a pu prendre votre demande {{.Skill}} à temps. Vous pouvez réserver un créneau ou redemander dans l'app.",
		"it": "Ci dispiace: nessuno ha potuto prendere in tempo la tua richiesta {{.Skill}}. Puoi prenotare una fascia oraria o chiedere di nuovo nell'app.",
	},
	KindOptedOut: {
		"en": "Onsite: you will get no more texts from this number. Reply START to get them again.",
		"de": "Onsite: Sie erhalten keine SMS mehr von dieser Nummer. Antworten Sie START, um sie wieder zu erhalten.",
		"fr": "Onsite : vous ne recevrez plus de SMS de ce numéro. Répondez START pour les recevoir à nouveau.",
		"it": "Onsite: non riceverai più SMS da questo numero. Rispondi START per riceverli di nuovo.",
	},
	KindOptedIn: {
		"en": "Onsite: texts from this number are on again. Reply STOP to stop them.",
		"de": "Onsite: SMS von dieser Nummer sind wieder eingeschaltet. Antworten Sie STOP, um sie zu beenden.",
		"fr": "Onsite : les SMS de ce numéro sont réactivés. Répondez STOP pour les arrêter.",
		"it": "Onsite: gli SMS da questo numero sono di nuovo attivi. Rispondi STOP per fermarli.",
	},
	KindInfo: {
		"en": "Onsite field service: texts about your requests and jobs. Everything is in the Onsite app. Reply STOP to stop texts.",
		"de": "Onsite Field Service: SMS zu Ihren Aufträgen. Alles Weitere in der Onsite-App. Antworten Sie STOP, um keine SMS mehr zu erhalten.",
		"fr": "Onsite, service sur site : SMS sur vos demandes et missions. Tout est dans l'app Onsite. Répondez STOP pour ne plus en recevoir.",
		"it": "Onsite, assistenza sul posto: SMS sulle tue richieste e lavori. Tutto è nell'app Onsite. Rispondi STOP per non riceverne più.",
	},
	KindNoReplies: {
		"en": "Onsite: this number does not read replies. Please use the Onsite app for your request. Reply STOP to stop texts.",
		"de": "Onsite: Antworten an diese Nummer werden nicht gelesen. Bitte nutzen Sie die Onsite-App für Ihren Auftrag. Antworten Sie STOP, um keine SMS mehr zu erhalten.",
		"fr": "Onsite : les réponses à ce numéro ne sont pas lues. Utilisez l'app Onsite pour votre demande. Répondez STOP pour ne plus recevoir de SMS.",
		"it": "Onsite: le risposte a questo numero non vengono lette. Usa l'app Onsite per la tua richiesta. Rispondi STOP per non ricevere più SMS.",
	},
	KindReminder: {
		"en": "Reminder: {{.Technician}} comes for your {{.Skill}} appointment {{if .Day}}on {{.Day}} {{end}}between {{.WindowFrom}} and {{.WindowTo}}.",
		"de": "Erinnerung: {{.Technician}} kommt zu Ihrem Termin {{.Skill}} {{if .Day}}am {{.Day}} {{end}}zwischen {{.WindowFrom}} und {{.WindowTo}}.",
		"fr": "Rappel : {{.Technician}} vient pour votre rendez-vous {{.Skill}} {{if .Day}}le {{.Day}} {{end}}entre {{.WindowFrom}} et {{.WindowTo}}.",
		"it": "Promemoria: {{.Technician}} viene per il tuo appuntamento {{.Skill}} {{if .Day}}{{.Day}} {{end}}tra le {{.WindowFrom}} e le {{.WindowTo}}.",
	},
	KindReminderTech: {
		"en": "Reminder: your {{.Skill}} job {{if .Day}}on {{.Day}} {{end}}between {{.WindowFrom}} and {{.WindowTo}}; the address is in the app.",
		"de": "Erinnerung: dein Auftrag {{.Skill}} {{if .Day}}am {{.Day}} {{end}}zwischen {{.WindowFrom}} und {{.WindowTo}}; die Adresse steht in der App.",
		"fr": "Rappel : votre mission {{.Skill}} {{if .Day}}le {{.Day}} {{end}}entre {{.WindowFrom}} et {{.WindowTo}} ; l'adresse est dans l'app.",
		"it": "Promemoria: il tuo lavoro {{.Skill}} {{if .Day}}{{.Day}} {{end}}tra le {{.WindowFrom}} e le {{.WindowTo}}; l'indirizzo è nell'app.",
	},
	KindReplyAccepted: {
		"en": "The job is yours: {{.Skill}}. Open the app for the address and to set off.",
		"de": "Der Auftrag gehört dir: {{.Skill}}. Öffne die App für die Adresse und um loszufahren.",
		"fr": "La mission est à vous : {{.Skill}}. Ouvrez l'app pour l'adresse et pour partir.",
		"it": "Il lavoro è tuo: {{.Skill}}. Apri l'app per l'indirizzo e per partire.",
	},
	KindReplyDeclined: {
		"en": "Declined. Thanks for answering.",
		"de": "Abgelehnt. Danke für die Antwort.",
		"fr": "Refusé. Merci d'avoir répondu.",
		"it": "Rifiutato. Grazie per la risposta.",
	},
	KindReplyTooLate: {
		"en": "Sorry, this job is no longer available{{if .Because}} ({{.Because}}){{end}}.",
		"de": "Leider ist dieser Auftrag nicht mehr verfügbar{{if .Because}} ({{.Because}}){{end}}.",
		"fr": "Cette mission n'est malheureusement plus disponible{{if .Because}} ({{.Because}}){{end}}.",
		"it": "Spiacenti, questo lavoro non è più disponibile{{if .Because}} ({{.Because}}){{end}}.",
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
		"en": "Your device reported a problem that needs {{.Skill}}. Send a technician? Confirm: {{.Link}}",
		"de": "Ihr Gerät meldet ein Problem, das {{.Skill}} braucht. Soll jemand vorbeikommen? Bestätigen: {{.Link}}",
		"fr": "Votre appareil signale un problème qui demande {{.Skill}}. Faut-il envoyer quelqu'un ? Confirmer : {{.Link}}",
		"it": "Il tuo dispositivo segnala un problema che richiede {{.Skill}}. Richiedere un intervento? Conferma: {{.Link}}",
	},
	KindOTP: {
		"en": "Your Onsite code is {{.Code}}. It expires in 5 minutes.",
		"de": "Ihr Onsite-Code lautet {{.Code}}. Er läuft in 5 Minuten ab.",
		"fr": "Votre code Onsite est {{.Code}}. Il expire dans 5 minutes.",
		"it": "Il tuo codice Onsite è {{.Code}}. Scade tra 5 minuti.",
	},
	KindContactCode: {
		"en": "Onsite: someone asked to be texted about their service request at this number. If that is fine with you, give them the code {{.Code}} (valid 10 minutes); otherwise ignore this text.",
		"de": "Onsite: Für einen Serviceauftrag sollen Nachrichten an diese Nummer gehen. Wenn Sie einverstanden sind, geben Sie den Code {{.Code}} weiter (10 Minuten gültig); sonst ignorieren Sie diese Nachricht.",
		"fr": "Onsite : une demande de service souhaite envoyer des messages à ce numéro. Si vous êtes d'accord, communiquez le code {{.Code}} (valable 10 minutes) ; sinon, ignorez ce message.",
		"it": "Onsite: una richiesta di assistenza vuole inviare messaggi a questo numero. Se sei d'accordo, comunica il codice {{.Code}} (valido 10 minuti); altrimenti ignora questo messaggio.",
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

// view is what a template sees: the data, and its reason in words.
type view struct {
	Data
	Because string
}

// Render writes a message in the recipient's locale (English when the
// locale is not one Onsite writes in).
func Render(kind Kind, locale string, d Data) (string, error) {
	byLocale, ok := templates[kind]
	if !ok {
		return "", fmt.Errorf("no template for %s", kind)
	}
	t, ok := byLocale[locale]
	if !ok {
		locale, t = "en", byLocale["en"]
	}
	v := view{Data: d}
	if d.Reason != ReasonNone {
		words, ok := reasonTexts[d.Reason]
		if !ok {
			return "", fmt.Errorf("render %s/%s: unknown reason %q", kind, locale, d.Reason)
		}
		v.Because = words[locale]
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
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

// Texts returns every template's source by kind and locale (for tests that
// read the wording).
func Texts() map[Kind]map[string]string {
	out := make(map[Kind]map[string]string, len(texts))
	for k, byLocale := range texts {
		out[k] = make(map[string]string, len(byLocale))
		for loc, text := range byLocale {
			out[k][loc] = text
		}
	}
	return out
}
