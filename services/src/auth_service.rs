//! AuthService (gRPC). The gateway's `/v1/auth/*` and `/v1/accounts` routes call the same
//! backend methods.

use std::sync::Arc;

use gridledger_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::auth::layer::principal;
use crate::backend::{AccountUpdate, AccountView, AuthBackend, NewAccount, TokenPair};
use crate::error::ServiceError;

/// The AuthService handlers over a backend.
#[derive(Debug)]
pub struct Auth<B> {
    backend: Arc<B>,
}

impl<B: AuthBackend> Auth<B> {
    /// Wraps a backend.
    pub fn new(backend: Arc<B>) -> Self {
        Self { backend }
    }
}

fn pair(t: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        expires_in: t.expires_in,
        token_type: "Bearer".into(),
    }
}

fn account(a: AccountView) -> pb::Account {
    pb::Account {
        username: a.username,
        org: a.org,
        roles: a.roles,
        meters: a.meters,
        disabled: a.disabled,
    }
}

type R<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl<B: AuthBackend> pb::auth_service_server::AuthService for Auth<B> {
    async fn login(&self, r: Request<pb::LoginRequest>) -> R<pb::TokenPair> {
        let r = r.into_inner();
        Ok(Response::new(pair(
            self.backend.login(r.username, r.password).await?,
        )))
    }

    async fn refresh(&self, r: Request<pb::RefreshRequest>) -> R<pb::TokenPair> {
        Ok(Response::new(pair(
            self.backend.refresh(r.into_inner().refresh_token)?,
        )))
    }

    async fn logout(&self, r: Request<pb::LogoutRequest>) -> R<pb::LogoutResponse> {
        let p = principal(r.extensions())?.clone();
        let t = r.into_inner().refresh_token;
        self.backend.logout(&p, (!t.is_empty()).then_some(t))?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_jwks(&self, _: Request<pb::JwksRequest>) -> R<pb::JwksResponse> {
        Ok(Response::new(pb::JwksResponse {
            jwks_json: self.backend.jwks().to_string(),
        }))
    }

    async fn issue_dynamic_token(
        &self,
        r: Request<pb::DynamicTokenRequest>,
    ) -> R<pb::DynamicToken> {
        let p = principal(r.extensions())?.clone();
        let r = r.into_inner();
        let t = self
            .backend
            .issue_dynamic(&p, r.scope, r.ttl_seconds, r.single_use)?;
        Ok(Response::new(pb::DynamicToken {
            token: t.token,
            expires_in: t.expires_in,
            jti: t.jti,
        }))
    }

    async fn create_account(&self, r: Request<pb::CreateAccountRequest>) -> R<pb::Account> {
        let p = principal(r.extensions())?.clone();
        let r = r.into_inner();
        let a = self
            .backend
            .create_account(
                &p,
                NewAccount {
                    username: r.username,
                    password: r.password,
                    roles: r.roles,
                    meters: r.meters,
                },
            )
            .await?;
        Ok(Response::new(account(a)))
    }

    async fn list_accounts(
        &self,
        r: Request<pb::ListAccountsRequest>,
    ) -> R<pb::ListAccountsResponse> {
        let p = principal(r.extensions())?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: self
                .backend
                .list_accounts(p)?
                .into_iter()
                .map(account)
                .collect(),
        }))
    }

    async fn update_account(&self, r: Request<pb::UpdateAccountRequest>) -> R<pb::Account> {
        let p = principal(r.extensions())?.clone();
        let r = r.into_inner();
        if r.username.is_empty() {
            return Err(ServiceError::InvalidArgument("username is required".into()).into());
        }
        let a = self
            .backend
            .update_account(
                &p,
                AccountUpdate {
                    username: r.username,
                    disabled: r.disabled,
                    new_password: r.new_password,
                    roles: r.set_roles.then_some(r.roles),
                    meters: r.set_meters.then_some(r.meters),
                },
            )
            .await?;
        Ok(Response::new(account(a)))
    }
}
