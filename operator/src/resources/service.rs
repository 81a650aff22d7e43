//! The Services of a stream: a client Service (the Kinesis endpoint applications use) and a
//! headless Service that gives each pod a stable DNS name.

use k8s_openapi::{
    api::core::v1::{Service, ServicePort, ServiceSpec},
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::ResourceExt;
use tributary_api::Stream;

use super::{child_meta, headless_service_name, selector_labels, API_PORT, METRICS_PORT};

/// The API and metrics ports of a data-plane Service.
pub fn ports() -> Vec<ServicePort> {
    vec![
        ServicePort {
            name: Some("kinesis".into()),
            port: API_PORT,
            target_port: Some(IntOrString::String("kinesis".into())),
            protocol: Some("TCP".into()),
            app_protocol: Some("http".into()),
            ..Default::default()
        },
        ServicePort {
            name: Some("metrics".into()),
            port: METRICS_PORT,
            target_port: Some(IntOrString::String("metrics".into())),
            protocol: Some("TCP".into()),
            app_protocol: Some("http".into()),
            ..Default::default()
        },
    ]
}

/// The client Service `<name>`: `http://<name>.<namespace>.svc:4567` is the stream's Kinesis
/// endpoint. It routes only to ready pods.
pub fn client_service(stream: &Stream) -> Service {
    Service {
        metadata: child_meta(stream, stream.name_any()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(stream)),
            ports: Some(ports()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The headless Service `<name>-pods` of the StatefulSet. It publishes pods before they are
/// ready, so pods can find each other while starting.
pub fn headless_service(stream: &Stream) -> Service {
    Service {
        metadata: child_meta(stream, headless_service_name(stream)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector_labels(stream)),
            ports: Some(ports()),
            publish_not_ready_addresses: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::stream;
    use crate::resources::snapshot::assert_snapshot;

    #[test]
    fn services_match_snapshots() {
        let s = stream("orders", 2);
        assert_snapshot("service-client", &client_service(&s));
        assert_snapshot("service-headless", &headless_service(&s));
    }

    #[test]
    fn both_services_select_exactly_the_stream_pods() {
        let s = stream("orders", 2);
        for svc in [client_service(&s), headless_service(&s)] {
            let sel = svc.spec.unwrap().selector.unwrap();
            assert_eq!(sel, selector_labels(&s));
        }
    }
}
