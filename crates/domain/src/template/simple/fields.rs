//! The fields a practice may insert in a simple text: their French names, what each stands for
//! in the template's variables, and which kind × channel has which.

use super::{Channel, Kind, is_alert};

/// One field a practice may insert in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    FirstName,
    LastName,
    PatientName,
    Appointments,
    Date,
    Time,
    Practitioner,
    Location,
    Motive,
    Instructions,
    DocumentTitle,
    DocumentLink,
    /// The appointment's answer page (`/r/TOKEN`): confirm or cancel (reminder SMS).
    AnswerPage,
    /// The link that confirms the patient will come (confirmation and reminder emails).
    ConfirmLink,
    /// The link that cancels the appointment (confirmation and reminder emails).
    CancelLink,
    TaskLabel,
    Practice,
}

impl Field {
    pub const ALL: &'static [Field] = &[
        Field::FirstName,
        Field::LastName,
        Field::PatientName,
        Field::Appointments,
        Field::Date,
        Field::Time,
        Field::Practitioner,
        Field::Location,
        Field::Motive,
        Field::Instructions,
        Field::DocumentTitle,
        Field::DocumentLink,
        Field::AnswerPage,
        Field::ConfirmLink,
        Field::CancelLink,
        Field::TaskLabel,
        Field::Practice,
    ];

    /// The field's name, as written between braces.
    pub fn label(self) -> &'static str {
        match self {
            Field::FirstName => "Prénom",
            Field::LastName => "Nom",
            Field::PatientName => "Patient",
            Field::Appointments => "Rendez-vous",
            Field::Date => "Date du rendez-vous",
            Field::Time => "Heure",
            Field::Practitioner => "Praticien",
            Field::Location => "Lieu",
            Field::Motive => "Motif",
            Field::Instructions => "Consignes",
            Field::DocumentTitle => "Document",
            Field::DocumentLink => "Lien du document",
            Field::AnswerPage => "Lien de réponse",
            Field::ConfirmLink => "Lien pour confirmer",
            Field::CancelLink => "Lien pour annuler",
            Field::TaskLabel => "Tâche",
            Field::Practice => "Cabinet",
        }
    }

    /// `{Prénom}`: what the editor inserts.
    pub fn token(self) -> String {
        format!("{{{}}}", self.label())
    }

    /// What the field holds, for the editor's list.
    pub fn help(self) -> &'static str {
        match self {
            Field::FirstName => "le prénom du patient (« Jeanne »)",
            Field::LastName => "le nom du patient (« Exemple »)",
            Field::PatientName => "le prénom et le nom du patient (« Jeanne Exemple »)",
            Field::Appointments => {
                "date, heure, praticien et lieu de chaque rendez-vous du message (« mercredi 11 mars \
                 2026 à 09h30 avec Dr Exemple, 12 rue de la Paix ») ; un SMS qui en regroupe \
                 plusieurs les cite tous"
            }
            Field::Date => "la date du (premier) rendez-vous (« mercredi 11 mars 2026 »)",
            Field::Time => "l'heure du (premier) rendez-vous (« 09h30 »)",
            Field::Practitioner => "le nom du praticien",
            Field::Location => "l'adresse du rendez-vous",
            Field::Motive => "le motif du rendez-vous",
            Field::Instructions => {
                "les consignes du motif (« Merci d'arriver 10 minutes en avance. »)"
            }
            Field::DocumentTitle => "le titre du document",
            Field::DocumentLink => "le lien sécurisé vers le document",
            Field::AnswerPage => {
                "le lien où le patient confirme ou annule son rendez-vous (vide si les liens sont \
                 désactivés : la ligne disparaît)"
            }
            Field::ConfirmLink => {
                "le lien qui confirme la présence du patient (vide si les liens sont désactivés)"
            }
            Field::CancelLink => {
                "le lien qui annule le rendez-vous (vide si les liens sont désactivés)"
            }
            Field::TaskLabel => "le nom de la tâche programmée",
            Field::Practice => "le nom du cabinet",
        }
    }

    /// The variable the compiled template sets for this field.
    pub(super) fn var(self) -> &'static str {
        match self {
            Field::FirstName => "prenom",
            Field::LastName => "nom",
            Field::PatientName => "patient_nom",
            Field::Appointments => "rendez_vous",
            Field::Date => "date_rdv",
            Field::Time => "heure",
            Field::Practitioner => "praticien",
            Field::Location => "lieu",
            Field::Motive => "motif",
            Field::Instructions => "consignes",
            Field::DocumentTitle => "document_titre",
            Field::DocumentLink => "lien",
            Field::AnswerPage => "lien_reponse",
            Field::ConfirmLink => "lien_confirmer",
            Field::CancelLink => "lien_annuler",
            Field::TaskLabel => "tache",
            Field::Practice => "cabinet",
        }
    }

    pub(super) fn from_var(var: &str) -> Option<Field> {
        Field::ALL.iter().copied().find(|f| f.var() == var)
    }

    /// The field written between braces, whatever its case and surrounding spaces.
    pub fn parse(label: &str) -> Option<Field> {
        let wanted = label.trim().to_lowercase();
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.label().to_lowercase() == wanted)
    }

    /// Whether a message of that kind on that channel has this field (what the sample data of
    /// [`check_template`](super::super::check_template) holds).
    pub fn available(self, kind: Kind, channel: Channel) -> bool {
        let short = matches!(channel, Channel::Sms | Channel::Push);
        let has_appointments = kind != Kind::Document;
        match self {
            Field::Practice => true,
            Field::FirstName | Field::LastName | Field::PatientName => !is_alert(kind),
            Field::Practitioner
            | Field::Appointments
            | Field::Date
            | Field::Time
            | Field::Location => has_appointments,
            Field::Motive | Field::Instructions => has_appointments && !short,
            Field::DocumentTitle => kind == Kind::Document && !short,
            Field::DocumentLink => kind == Kind::Document && channel != Channel::Postal,
            Field::AnswerPage => {
                super::carries_answer_links(kind, channel) && channel == Channel::Sms
            }
            Field::ConfirmLink | Field::CancelLink => {
                super::carries_answer_links(kind, channel) && channel == Channel::Email
            }
            Field::TaskLabel => kind == Kind::Task,
        }
    }

    /// The `{% set %}` line that gives the field's variable its value (an empty string when
    /// the message has none). `when_frame` is the channel's appointment list.
    pub(super) fn definition(self, when_frame: &str) -> String {
        let first = |attribute: &str| {
            format!(
                "{{% set {} = (appointments[0].{attribute} or \"\") if appointments else \"\" %}}",
                self.var()
            )
        };
        let of = |parent: &str, attribute: &str| {
            format!(
                "{{% set {} = ({parent}.{attribute} or \"\") if {parent} else \"\" %}}",
                self.var()
            )
        };
        match self {
            Field::Practice => format!("{{% set {} = practice.name %}}", self.var()),
            Field::FirstName => of("patient", "first_name"),
            Field::LastName => of("patient", "last_name"),
            Field::PatientName => of("patient", "name"),
            Field::Practitioner => of("practitioner", "name"),
            Field::Appointments => {
                when_frame.replacen("{% set when %}", "{% set rendez_vous %}", 1)
            }
            Field::Date => first("date_text"),
            Field::Time => first("time_text"),
            Field::Location => first("location"),
            Field::Motive => first("motive"),
            Field::Instructions => format!(
                "{{% set {} = appointments | selectattr(\"instructions\") | map(attribute=\"instructions\") | join(\" \") %}}",
                self.var()
            ),
            Field::DocumentTitle => of("document", "title"),
            Field::DocumentLink => of("document", "link"),
            Field::AnswerPage => of("links", "page"),
            Field::ConfirmLink => of("links", "confirm"),
            Field::CancelLink => of("links", "cancel"),
            Field::TaskLabel => of("task", "label"),
        }
    }
}

pub(super) fn why_absent(field: Field, channel: Channel) -> &'static str {
    match field {
        Field::FirstName | Field::LastName | Field::PatientName => {
            "une alerte au praticien ne concerne pas un patient nommé"
        }
        Field::Motive | Field::Instructions | Field::DocumentTitle
            if matches!(channel, Channel::Sms | Channel::Push) =>
        {
            "un SMS ou une notification push ne contient aucune information de santé"
        }
        Field::DocumentLink if channel == Channel::Postal => {
            "un courrier contient le document lui-même"
        }
        Field::DocumentTitle | Field::DocumentLink => "seul l'envoi d'un document en a un",
        Field::AnswerPage => "seul le rappel par SMS porte le lien de réponse",
        Field::ConfirmLink | Field::CancelLink => {
            "seuls les emails de confirmation et de rappel portent ces liens"
        }
        Field::TaskLabel => "seul le message d'une tâche programmée en a une",
        _ => "un document n'est lié à aucun rendez-vous",
    }
}

/// The fields of that kind and channel, as a list for messages.
pub fn available_list(kind: Kind, channel: Channel) -> String {
    Field::ALL
        .iter()
        .filter(|f| f.available(kind, channel))
        .map(|f| f.token())
        .collect::<Vec<_>>()
        .join(", ")
}
