//! The web workspace's sessions: stored by hash, read with their key while it lives and they
//! last, pointed at a tenant by platform keys only, ended.

use charter_core::TenantId;
use charter_store::{KeyScope, Principal, Store, StoreError};

use crate::harness::{Kind, at, both, platform, seed};

both!(sessions_live_with_their_key_and_their_time);

async fn sessions_live_with_their_key_and_their_time(store: Store, _: Kind) {
    seed(&store).await;
    let p = platform();
    let acme = TenantId::new("acme").unwrap();
    let secret = charter_store::new_key_secret();
    let key = store
        .create_key(&p, "acme ops", Some(&acme), &[KeyScope::Read], &secret)
        .await
        .unwrap();
    let admin_secret = charter_store::new_key_secret();
    let admin = store
        .create_key(&p, "admin", None, &[KeyScope::Read], &admin_secret)
        .await
        .unwrap();
    let (id, csrf) = ("a".repeat(64), "b".repeat(64));
    store
        .create_session(&id, &key.id, &csrf, at(0), at(3600))
        .await
        .unwrap();

    let session = store.session(&id, at(10)).await.unwrap().unwrap();
    assert_eq!(session.key.id, key.id);
    assert_eq!(session.csrf_token, csrf);
    assert_eq!(session.tenant_id, None);
    assert_eq!((session.created_at, session.expires_at), (at(0), at(3600)));
    // Only the hash is kept: the id itself names nothing stored.
    assert!(
        store
            .session(&"c".repeat(64), at(10))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store.session(&id, at(3600)).await.unwrap().is_none(),
        "expired"
    );

    // A tenant key chooses nothing; a platform key chooses a tenant that exists, or all.
    let tenant = Principal::Tenant(acme.clone());
    assert!(matches!(
        store.choose_session_tenant(&id, &tenant, Some(&acme)).await,
        Err(StoreError::Forbidden(_))
    ));
    let (admin_id, admin_csrf) = ("d".repeat(64), "e".repeat(64));
    store
        .create_session(&admin_id, &admin.id, &admin_csrf, at(0), at(3600))
        .await
        .unwrap();
    store
        .choose_session_tenant(&admin_id, &Principal::Platform, Some(&acme))
        .await
        .unwrap();
    let chosen = store.session(&admin_id, at(1)).await.unwrap().unwrap();
    assert_eq!(chosen.tenant_id.as_deref(), Some("acme"));
    let nowhere = TenantId::new("nowhere").unwrap();
    assert!(matches!(
        store
            .choose_session_tenant(&admin_id, &Principal::Platform, Some(&nowhere))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    store
        .choose_session_tenant(&admin_id, &Principal::Platform, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .session(&admin_id, at(1))
            .await
            .unwrap()
            .unwrap()
            .tenant_id,
        None
    );

    // Revoking the key ends its sessions at once; ending one leaves the others.
    store.revoke_key(&p, &key.id).await.unwrap();
    assert!(store.session(&id, at(20)).await.unwrap().is_none());
    store.end_session(&admin_id).await.unwrap();
    assert!(store.session(&admin_id, at(20)).await.unwrap().is_none());
    store.end_session(&admin_id).await.unwrap();

    // A new session drops the expired ones.
    let (late, late_csrf) = ("f".repeat(64), "0".repeat(64));
    store
        .create_session(&late, &admin.id, &late_csrf, at(7200), at(9000))
        .await
        .unwrap();
    assert!(store.session(&late, at(7201)).await.unwrap().is_some());
}
