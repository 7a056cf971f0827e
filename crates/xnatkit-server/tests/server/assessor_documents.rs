//! Assessors created and replaced from XNAT XML documents, as dax
//! (`PUT …?inbody=true` with the raw document) and pyxnat's
//! `create(xml=…)` (the document as a multipart file) send them: the type,
//! label and fields from the document, a QC assessment's per-scan
//! statistics as XNAT's `scans/scan` records, a replacing PUT, and a bad
//! document refused with what is wrong.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::TestServer;

xnatkit_test_support::on_both_backends!(assessors_from_xml_documents);

const QC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xnat:QCAssessment xmlns:xnat="http://nrg.wustl.edu/xnat" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    ID="" label="SESS1_QA_1" project="DOCS" type="xnatkit-qa">
  <xnat:date>2026-12-06</xnat:date>
  <xnat:imageSession_ID>ignored</xnat:imageSession_ID>
  <xnat:scans>
    <xnat:scan id="1"><xnat:scanStatistics xsi:type="xnat:statisticsData">
      <xnat:mean>101.5</xnat:mean><xnat:snr>12.25</xnat:snr>
      <xnat:additionalStatistics name="snr">12.25</xnat:additionalStatistics>
      <xnat:additionalStatistics name="efc">0.4375</xnat:additionalStatistics>
    </xnat:scanStatistics></xnat:scan>
  </xnat:scans>
</xnat:QCAssessment>"#;

fn genproc(status: &str, with_type: bool) -> String {
    let proctype = if with_type {
        "<proc:proctype>FS</proc:proctype>"
    } else {
        ""
    };
    format!(
        r#"<proc:genProcData xmlns:proc="http://nrg.wustl.edu/proc" xmlns:xnat="http://nrg.wustl.edu/xnat" label="SESS1-x-FS">
  <proc:procstatus>{status}</proc:procstatus>{proctype}
  <proc:validation><proc:status>Needs QA</proc:status></proc:validation>
</proc:genProcData>"#
    )
}

async fn item(s: &TestServer, uri: &str) -> Value {
    let body = s.json(&format!("{uri}?format=json"), &s.admin()).await;
    body["items"][0].clone()
}

/// dax's form: the raw document, `inbody=true`.
async fn put_raw(s: &TestServer, uri: &str, xml: String) -> reqwest::Response {
    s.req(Method::PUT, &format!("{uri}?inbody=true"), Some(&s.admin()))
        .header("Content-Type", "text/xml")
        .body(xml)
        .send()
        .await
        .unwrap()
}

async fn assessors_from_xml_documents(s: &TestServer) {
    let admin = s.admin();
    s.seed(&admin, "DOCS").await;
    let session = "/data/projects/DOCS/subjects/SUBJ1/experiments/SESS1";

    let qc_uri = format!("{session}/assessors/SESS1_QA_1");
    let r = put_raw(s, &qc_uri, QC.to_owned()).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let qc = item(s, &qc_uri).await;
    assert_eq!(qc["meta"]["xsi:type"], "xnat:qcAssessmentData", "{qc}");
    assert_eq!(qc["data_fields"]["type"], "xnatkit-qa", "{qc}");
    assert_eq!(qc["data_fields"]["date"], "2026-12-06", "{qc}");
    let scans = qc["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "scans/scan")
        .expect("scans/scan")
        .clone();
    let scan = &scans["items"][0];
    assert_eq!(scan["data_fields"]["id"], "1", "{scan}");
    let stats = &scan["children"][0]["items"][0];
    assert_eq!(stats["data_fields"]["mean"], "101.5", "{stats}");
    let additional: Vec<(String, String)> = stats["children"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["data_fields"]["name"].as_str().unwrap().to_owned(),
                a["data_fields"]["additionalStatistics"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        additional,
        [("snr", "12.25"), ("efc", "0.4375"), ("mean", "101.5")]
            .map(|(a, b)| (a.to_owned(), b.to_owned())),
    );
    // A replacing document without statistics leaves none behind.
    let bare = QC.split("<xnat:scans>").next().unwrap().to_owned() + "</xnat:QCAssessment>";
    let r = put_raw(s, &qc_uri, bare).await;
    assert!(r.status().is_success(), "{}", r.status());
    let qc = item(s, &qc_uri).await;
    assert_eq!(qc["data_fields"]["type"], "xnatkit-qa", "{qc}");
    assert!(
        qc["children"]
            .as_array()
            .is_none_or(|c| c.iter().all(|c| c["field"] != "scans/scan")),
        "{qc}"
    );

    // pyxnat: the document as a multipart file.
    let proc_uri = format!("{session}/assessors/SESS1-x-FS");
    let put_multipart = |xml: String, query: &'static str| {
        let form = reqwest::multipart::Form::new().part(
            "data.xml",
            reqwest::multipart::Part::text(xml)
                .file_name("data.xml")
                .mime_str("text/xml")
                .unwrap(),
        );
        s.req(Method::PUT, &format!("{proc_uri}{query}"), Some(&admin))
            .multipart(form)
            .send()
    };
    let r = put_multipart(genproc("NEED_TO_RUN", true), "")
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let proc = item(s, &proc_uri).await;
    assert_eq!(proc["meta"]["xsi:type"], "proc:genProcData", "{proc}");
    assert_eq!(proc["data_fields"]["procstatus"], "NEED_TO_RUN");
    assert_eq!(proc["data_fields"]["proctype"], "FS");
    assert_eq!(proc["data_fields"]["validation/status"], "Needs QA");

    // A second document replaces the record (proctype is gone) unless
    // allowDataDeletion=false keeps what it does not name.
    let r = put_multipart(genproc("JOB_RUNNING", false), "?allowDataDeletion=false")
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let proc = item(s, &proc_uri).await;
    assert_eq!(proc["data_fields"]["procstatus"], "JOB_RUNNING");
    assert_eq!(proc["data_fields"]["proctype"], "FS", "kept: {proc}");
    let r = put_multipart(genproc("COMPLETE", false), "").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let proc = item(s, &proc_uri).await;
    assert_eq!(proc["data_fields"]["procstatus"], "COMPLETE");
    assert!(
        proc["data_fields"].get("proctype").is_none(),
        "replaced: {proc}"
    );

    // Bad documents: what is wrong, and nothing stored.
    for (body, says) in [
        (
            genproc("X", true).replace("procstatus>", "procstatuz>"),
            "has no field procstatuz",
        ),
        ("<xnat:mrSessionData/>".to_owned(), "not an assessor type"),
        (
            "<proc:genProcData><proc:procstatus>".to_owned(),
            "not well-formed",
        ),
    ] {
        let r = put_raw(s, &format!("{session}/assessors/BAD"), body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{says}: {text}");
    }
    let r = s
        .get(&format!("{session}/assessors/BAD?format=json"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
