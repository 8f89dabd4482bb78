//! The bank account of cqrs-es's documentation (its user guide's "Getting
//! started" chapters): the aggregate, its commands, events, error and
//! services, and the account view of its persisted-views chapter. Shared by
//! the `bank_account` example and the tests (`#[path]`), so that both run
//! the same domain.

use std::fmt::{Display, Formatter};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, View};
use serde::{Deserialize, Serialize};

/// The commands of the guide.
#[derive(Debug, Deserialize)]
pub enum BankAccountCommand {
    OpenAccount { account_id: String },
    DepositMoney { amount: f64 },
    WithdrawMoney { amount: f64 },
    WriteCheck { check_number: String, amount: f64 },
}

/// The events of the guide.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub enum BankAccountEvent {
    AccountOpened {
        account_id: String,
    },
    CustomerDepositedMoney {
        amount: f64,
        balance: f64,
    },
    CustomerWithdrewCash {
        amount: f64,
        balance: f64,
    },
    CustomerWroteCheck {
        check_number: String,
        amount: f64,
        balance: f64,
    },
}

impl DomainEvent for BankAccountEvent {
    fn event_type(&self) -> String {
        match self {
            BankAccountEvent::AccountOpened { .. } => "AccountOpened",
            BankAccountEvent::CustomerDepositedMoney { .. } => "CustomerDepositedMoney",
            BankAccountEvent::CustomerWithdrewCash { .. } => "CustomerWithdrewCash",
            BankAccountEvent::CustomerWroteCheck { .. } => "CustomerWroteCheck",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// The user error of the guide.
#[derive(Debug, PartialEq)]
pub struct BankAccountError(pub String);

impl Display for BankAccountError {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for BankAccountError {}

impl From<&str> for BankAccountError {
    fn from(message: &str) -> Self {
        BankAccountError(message.to_string())
    }
}

/// The guide's external services; both always approve here.
#[derive(Debug, Default)]
pub struct BankAccountServices;

impl BankAccountServices {
    async fn atm_withdrawal(&self, _atm_id: &str, _amount: f64) -> Result<(), BankAccountError> {
        Ok(())
    }

    async fn validate_check(&self, _account: &str, _check: &str) -> Result<(), BankAccountError> {
        Ok(())
    }
}

/// The aggregate of the guide: whether the account is open, and its
/// balance.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BankAccount {
    account_id: String,
    opened: bool,
    // A floating point for the example, as in the guide; don't do this IRL.
    balance: f64,
}

impl BankAccount {
    /// The balance.
    #[allow(dead_code)]
    pub fn balance(&self) -> f64 {
        self.balance
    }
}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "Account";
    type Command = BankAccountCommand;
    type Event = BankAccountEvent;
    type Error = BankAccountError;
    type Services = BankAccountServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            BankAccountCommand::OpenAccount { account_id } => {
                if self.opened {
                    return Err("account already open".into());
                }
                sink.write(BankAccountEvent::AccountOpened { account_id }, self)
                    .await;
            }
            BankAccountCommand::DepositMoney { amount } => {
                if !self.opened {
                    return Err("account not open".into());
                }
                let balance = self.balance + amount;
                sink.write(
                    BankAccountEvent::CustomerDepositedMoney { amount, balance },
                    self,
                )
                .await;
            }
            BankAccountCommand::WithdrawMoney { amount } => {
                let balance = self.balance - amount;
                if balance < 0_f64 {
                    return Err("funds not available".into());
                }
                services.atm_withdrawal("ATM34f1ba3c", amount).await?;
                sink.write(
                    BankAccountEvent::CustomerWithdrewCash { amount, balance },
                    self,
                )
                .await;
            }
            BankAccountCommand::WriteCheck {
                check_number,
                amount,
            } => {
                let balance = self.balance - amount;
                if balance < 0_f64 {
                    return Err("funds not available".into());
                }
                services
                    .validate_check(&self.account_id, &check_number)
                    .await?;
                sink.write(
                    BankAccountEvent::CustomerWroteCheck {
                        check_number,
                        amount,
                        balance,
                    },
                    self,
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BankAccountEvent::AccountOpened { account_id } => {
                self.opened = true;
                self.account_id = account_id;
            }
            BankAccountEvent::CustomerDepositedMoney { balance, .. }
            | BankAccountEvent::CustomerWithdrewCash { balance, .. }
            | BankAccountEvent::CustomerWroteCheck { balance, .. } => self.balance = balance,
        }
    }
}

/// The account view of the guide's persisted-views chapter.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
pub struct BankAccountView {
    pub account_id: Option<String>,
    pub balance: f64,
    pub written_checks: Vec<String>,
    pub ledger: Vec<String>,
}

impl View<BankAccount> for BankAccountView {
    fn update(&mut self, event: &EventEnvelope<BankAccount>) {
        match &event.payload {
            BankAccountEvent::AccountOpened { account_id } => {
                self.account_id = Some(account_id.clone());
            }
            BankAccountEvent::CustomerDepositedMoney { amount, balance } => {
                self.ledger.push(format!("deposit {amount}"));
                self.balance = *balance;
            }
            BankAccountEvent::CustomerWithdrewCash { amount, balance } => {
                self.ledger.push(format!("atm withdrawal {amount}"));
                self.balance = *balance;
            }
            BankAccountEvent::CustomerWroteCheck {
                check_number,
                amount,
                balance,
            } => {
                self.ledger.push(format!("check {check_number} {amount}"));
                self.written_checks.push(check_number.clone());
                self.balance = *balance;
            }
        }
    }
}
